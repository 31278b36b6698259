/**
 * The store's routes: the page (/), /api/releases and /api/builds from the catalog, directories,
 * files, and .sha256 sidecars (the record's sum for a recorded file, else computed).
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { relative, sep } from 'node:path';
import { type NetbootContext, netbootView, readNodes } from '../netboot/netboot.js';
import { apiBuilds, apiReleases } from './api.js';
import { type CatalogSource, loadCatalog, recordedSums } from './catalog.js';
import { serveDirectory, serveFile } from './files.js';
import { contentTypeOf, hiddenInside, reply, sha256Of } from './http.js';
import { renderIndexPage } from './page.js';
import { checkRequestPath, containedRealPath } from './paths.js';

/** What the store's routes need: the options (catalog source, title, netboot), the real root, the log. */
export interface StoreRoutes {
  o: CatalogSource & { title?: string; netboot?: NetbootContext };
  root: string;
  log: (line: string) => void;
}

export async function handleStore(
  req: IncomingMessage,
  res: ServerResponse,
  s: StoreRoutes,
  url: string,
  pathOnly: string,
): Promise<void> {
  const { root, log } = s;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(req, res, 405, 'only GET and HEAD\n', undefined, { Allow: 'GET, HEAD' });
  }
  if (pathOnly === '/' || pathOnly === '/api/releases' || pathOnly === '/api/builds') {
    return catalogRoute(req, res, s, pathOnly);
  }
  const check = checkRequestPath(url);
  if (!check.ok) {
    return reply(
      req,
      res,
      check.status,
      check.status === 400 ? `bad path: ${check.reason}\n` : 'not found\n',
    );
  }
  const found = await containedRealPath(root, check.segments);
  if (found?.escaped) return reply(req, res, 403, 'forbidden: the path leaves the served directory\n');
  // A symlink to a hidden file (a temporary name, rsync's partial dir) is as hidden as the file.
  if (
    found &&
    relative(root, found.path)
      .split(sep)
      .some((x) => x.startsWith('.'))
  ) {
    return reply(req, res, 404, 'not found\n');
  }
  const last = check.segments.at(-1);
  if (last?.endsWith('.sha256') && !check.directory) {
    const line = await sidecarLine(s, check.segments, found?.path);
    if (line !== undefined) return reply(req, res, 200, line, contentTypeOf(last));
  }
  if (!found) return reply(req, res, 404, 'not found\n');
  const st = await stat(found.path);
  if (st.isDirectory()) {
    if (!check.directory) {
      const loc = `${pathOnly}/`;
      return reply(req, res, 301, `moved to ${loc}\n`, undefined, { Location: loc });
    }
    return serveDirectory(req, res, root, found.path, pathOnly);
  }
  if (!st.isFile() || check.directory) return reply(req, res, 404, 'not found\n');
  // Unreadable (EACCES): thrown to the handler's catch, which answers 403 without the path.
  await access(found.path, constants.R_OK);
  return serveFile(req, res, found.path, root, log);
}

/** The page (/), /api/releases or /api/builds, from the catalog as it is now. */
async function catalogRoute(
  req: IncomingMessage,
  res: ServerResponse,
  s: StoreRoutes,
  pathOnly: string,
): Promise<void> {
  const { o, log } = s;
  const problems: string[] = [];
  const catalog = await loadCatalog(o, problems);
  for (const p of problems) log(`warning: ${p}`);
  if (pathOnly === '/') {
    const nb = o.netboot ? netbootView(o.netboot, await readNodes(o.netboot.nodesDir)) : undefined;
    return reply(req, res, 200, renderIndexPage(catalog, o.title, nb), 'text/html; charset=utf-8');
  }
  const body = pathOnly === '/api/releases' ? apiReleases(catalog) : apiBuilds(catalog);
  return reply(req, res, 200, `${JSON.stringify(body, null, 2)}\n`, 'application/json', {
    'Cache-Control': 'no-cache',
  });
}

/**
 * The line a NAME.sha256 request is answered with, or undefined (then the stored file or a 404):
 * for a file osbake recorded, the record's sum, whatever a stored sidecar says (a sidecar that
 * disagrees is logged: the file or its sidecar was changed after it was recorded); for a sidecar
 * neither stored nor recorded, the sum computed from the file (cached) — never for a file outside
 * the root or hidden (a symlink to a temporary name is hidden too).
 */
async function sidecarLine(
  s: StoreRoutes,
  segments: string[],
  stored: string | undefined,
): Promise<string | undefined> {
  const last = segments.at(-1) ?? '';
  const name = last.slice(0, -'.sha256'.length);
  if (segments.length > 1) {
    const recorded = (await recordedSums(s.o)).get([...segments.slice(0, -1), name].join('/'));
    if (recorded) {
      if (stored) {
        const text = await readFile(stored, 'utf8').catch(() => '');
        if (text.trim().split(/\s+/)[0] !== recorded)
          s.log(`warning: ${segments.join('/')} differs from the recorded SHA-256; answering the record`);
      }
      return `${recorded}  ${name}\n`;
    }
  }
  if (stored) return undefined;
  const base = await containedRealPath(s.root, [...segments.slice(0, -1), name]);
  const visible = base && !base.escaped && !hiddenInside(s.root, base.path);
  const st = visible ? await stat(base.path).catch(() => undefined) : undefined;
  if (!base || !st?.isFile()) return undefined;
  return `${await sha256Of(base.path)}  ${name}\n`;
}
