import { constants, statSync } from 'node:fs';
import { access, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { basename, join, relative, sep } from 'node:path';
import send from 'send';
import { normalizeMac } from '../config/netboot.js';
import { nodeByMac } from '../config/nodes.js';
import { UserError } from '../errors.js';
import { identityBlock } from '../installer/node-identity.js';
import {
  baseUrl,
  chainScript,
  mayRecord,
  type NetbootContext,
  netbootView,
  nodeScript,
  parseReport,
  readNode,
  readNodes,
  updateNode,
} from '../netboot/netboot.js';
import { apiBuilds, apiReleases } from './api.js';
import { type CatalogSource, loadCatalog, recordedSums } from './catalog.js';
import {
  coalesceRanges,
  contentTypeOf,
  hiddenInside,
  hostHeaders,
  isHttp09RequestLine,
  isPermissionError,
  READ_CHUNK,
  REPORT_MAX_BYTES,
  readBody,
  reply,
  STATUS_BODIES,
  sha256Of,
  strongEtag,
} from './http.js';
import { renderIndexPage, renderListing } from './page.js';

export { contentTypeOf, TYPES } from './http.js';

import { checkRequestPath, containedRealPath, isInside, splitRequestTarget, validHost } from './paths.js';

export interface ArtifactServerOptions extends CatalogSource {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** One line per request (and per problem). */
  log?: (line: string) => void;
  /** Log one line per request (default true; behind nginx, nginx logs them). */
  accessLog?: boolean;
  /** How long close() waits for requests in flight before cutting them. */
  graceMs?: number;
  title?: string;
  /** osbake serve --netboot: the /netboot/ routes and /api/netboot. */
  netboot?: NetbootContext;
  /** Behind nginx: the client is X-Forwarded-For, the Host it asked for X-Forwarded-Host. */
  behindProxy?: boolean;
}

export interface ArtifactServer {
  url: string;
  host: string;
  port: number;
  root: string;
  close(): Promise<void>;
}

export async function startArtifactServer(o: ArtifactServerOptions): Promise<ArtifactServer> {
  const root = await realpath(o.storeDir);
  const log = o.log ?? (() => {});
  const inFlight = new Set<ServerResponse>();

  async function serveDirectory(req: IncomingMessage, res: ServerResponse, dir: string, urlPath: string) {
    const entries = [];
    for (const name of (await readdir(dir)).filter((n) => !n.startsWith('.'))) {
      const real = await realpath(join(dir, name)).catch(() => undefined);
      if (!real || !isInside(root, real) || hiddenInside(root, real)) continue;
      const st = await stat(real).catch(() => undefined);
      if (!st || !(st.isFile() || st.isDirectory())) continue;
      entries.push({ name, directory: st.isDirectory(), size: st.size, mtime: st.mtime });
    }
    const display = `/${relative(root, dir).split(sep).join('/')}${dir === root ? '' : '/'}`;
    reply(req, res, 200, renderListing(urlPath, display, entries), 'text/html; charset=utf-8');
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, file: string, base = root): void {
    const rel = relative(base, file).split(sep).map(encodeURIComponent).join('/');
    // send answers one range only (several → 200 with the whole file): several ranges are
    // coalesced into the one span that holds them all, answered 206 with its Content-Range.
    const st = statSync(file);
    const coalesced = coalesceRanges(req.headers.range, st.size);
    if (coalesced) req.headers.range = coalesced;
    // A strong ETag from mtime and size (as nginx makes it), so If-Range can use it; a weak
    // If-Range tag never matches (RFC 9110 13.1.5): the whole file is sent.
    res.setHeader('ETag', strongEtag(st.mtimeMs, st.size));
    if (/^\s*W\//.test(String(req.headers['if-range'] ?? ''))) delete req.headers.range;
    res.setHeader('Content-Type', contentTypeOf(basename(file)));
    const options = {
      root: base,
      index: false,
      dotfiles: 'allow', // hidden names are refused by checkRequestPath already
      etag: false, // set above: strong
      lastModified: true,
      acceptRanges: true,
      // Passed on to fs.createReadStream: 1 MiB reads instead of 64 KiB (throughput, see bench/).
      highWaterMark: READ_CHUNK,
    } as send.SendOptions;
    send(req, `/${rel}`, options)
      .on(
        'error',
        (err: { status?: number; code?: string; message: string; headers?: Record<string, string> }) => {
          // send's messages may name the file's path: the body says only what happened.
          const status = isPermissionError(err) ? 403 : (err.status ?? 500);
          if (status >= 500) log(`error: ${req.method} ${req.url}: ${err.message}`);
          if (res.headersSent) return void res.destroy();
          res.removeHeader('Content-Type');
          res.removeHeader('Content-Range');
          const body = STATUS_BODIES[status] ?? 'internal error\n';
          reply(req, res, status, body, undefined, err.headers ?? {});
        },
      )
      .pipe(res);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only HTTP/1.x (HTTP/0.9 is answered at the connection, see below): as nginx, 505 otherwise.
    if (req.httpVersionMajor !== 1) {
      return reply(req, res, 505, 'HTTP/1.0 or HTTP/1.1, please\n', undefined, { Connection: 'close' });
    }
    // An absolute-form target ("GET http://host/path") is accepted as nginx accepts it; its host
    // then stands for the Host header.
    const target = splitRequestTarget(req.url ?? '/');
    const url = target.path;
    const hosts = hostHeaders(req.rawHeaders);
    if (hosts.length > 1 || hosts.some((h) => h.trim() === '')) {
      return reply(req, res, 400, 'one non-empty Host header, please\n');
    }
    const host = target.host ?? hosts[0];
    if (host !== undefined && !validHost(host)) return reply(req, res, 400, 'bad Host header\n');
    const pathOnly = url.split(/[?#]/)[0] ?? '/';
    if (o.netboot && (pathOnly === '/api/netboot' || pathOnly.startsWith('/netboot/'))) {
      return handleNetboot(req, res, o.netboot, pathOnly, url);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply(req, res, 405, 'only GET and HEAD\n', undefined, { Allow: 'GET, HEAD' });
    }
    if (pathOnly === '/' || pathOnly === '/api/releases' || pathOnly === '/api/builds') {
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
    // A .sha256 of a file osbake recorded: the record's sum, whatever a stored sidecar says (a
    // sidecar that disagrees is logged: the file or its sidecar was changed after it was recorded).
    const last = check.segments.at(-1);
    if (last?.endsWith('.sha256') && !check.directory && check.segments.length > 1) {
      const recorded = (await recordedSums(o)).get(
        [...check.segments.slice(0, -1), last.slice(0, -7)].join('/'),
      );
      if (recorded) {
        const line = `${recorded}  ${last.slice(0, -7)}\n`;
        if (found) {
          const stored = await readFile(found.path, 'utf8').catch(() => '');
          if (stored.trim().split(/\s+/)[0] !== recorded)
            log(
              `warning: ${check.segments.join('/')} differs from the recorded SHA-256; answering the record`,
            );
        }
        return reply(req, res, 200, line, contentTypeOf(last));
      }
    }
    if (!found) {
      // A .sha256 sidecar that is neither stored nor recorded: computed from the file (cached).
      if (last?.endsWith('.sha256') && !check.directory) {
        const base = await containedRealPath(root, [...check.segments.slice(0, -1), last.slice(0, -7)]);
        // Never for a file outside the root or hidden (a symlink to a temporary name is hidden too).
        const visible = base && !base.escaped && !hiddenInside(root, base.path);
        const st = visible ? await stat(base.path).catch(() => undefined) : undefined;
        if (base && st?.isFile()) {
          const hex = await sha256Of(base.path);
          return reply(req, res, 200, `${hex}  ${last.slice(0, -7)}\n`, contentTypeOf(last));
        }
      }
      return reply(req, res, 404, 'not found\n');
    }
    const st = await stat(found.path);
    if (st.isDirectory()) {
      if (!check.directory) {
        const loc = `${pathOnly}/`;
        return reply(req, res, 301, `moved to ${loc}\n`, undefined, { Location: loc });
      }
      return serveDirectory(req, res, found.path, pathOnly);
    }
    if (!st.isFile() || check.directory) return reply(req, res, 404, 'not found\n');
    // Unreadable (EACCES): thrown to the handler's catch, which answers 403 without the path.
    await access(found.path, constants.R_OK);
    return serveFile(req, res, found.path);
  }

  /** The client's address and the Host it asked for (behind nginx: from nginx's headers). */
  function client(req: IncomingMessage): { address: string; host: string | undefined } {
    const h = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    if (o.behindProxy) {
      return { address: h('x-forwarded-for') ?? '-', host: h('x-forwarded-host') };
    }
    return { address: req.socket.remoteAddress ?? '-', host: h('host') };
  }

  async function handleNetboot(
    req: IncomingMessage,
    res: ServerResponse,
    nb: NetbootContext,
    pathOnly: string,
    url: string,
  ): Promise<void> {
    const noStore = { 'Cache-Control': 'no-store' };
    const getOnly = () => reply(req, res, 405, 'only GET and HEAD\n', undefined, { Allow: 'GET, HEAD' });
    if (pathOnly === '/netboot/report') {
      if (req.method !== 'POST') return reply(req, res, 405, 'only POST\n', undefined, { Allow: 'POST' });
      const type = String(req.headers['content-type'] ?? '')
        .split(';')[0]
        ?.trim()
        .toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') {
        return reply(req, res, 415, 'send application/x-www-form-urlencoded (curl --data-urlencode)\n');
      }
      const body = await readBody(req, REPORT_MAX_BYTES);
      if (body === undefined)
        return reply(req, res, 413, STATUS_BODIES[413] as string, undefined, { Connection: 'close' });
      const report = parseReport(body);
      if (typeof report === 'string') return reply(req, res, 400, `bad report: ${report}\n`);
      if (!nodeByMac(nb.nodes, report.mac) && nb.config.unknown === 'refuse') {
        return reply(req, res, 403, 'not a node of this server\n');
      }
      if (!(await mayRecord(nb.nodesDir, nb.nodes, report.mac))) {
        return reply(req, res, 429, 'too many unknown nodes recorded\n');
      }
      await updateNode(nb.nodesDir, report.mac, {
        ...report,
        release: nb.release.release,
        address: client(req).address,
      });
      return reply(req, res, 200, 'ok\n', undefined, noStore);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return getOnly();
    if (pathOnly === '/api/netboot') {
      const view = netbootView(nb, await readNodes(nb.nodesDir));
      return reply(req, res, 200, `${JSON.stringify(view, null, 2)}\n`, 'application/json', {
        'Cache-Control': 'no-cache',
      });
    }
    if (pathOnly === '/netboot/boot.ipxe') {
      const base = baseUrl(nb.config, client(req).host);
      if (!base) return reply(req, res, 400, 'bad Host header (or set netboot.url in osbake.yaml)\n');
      const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
      const macText = query.get('mac');
      if (macText === null)
        return reply(req, res, 200, chainScript(base), 'text/plain; charset=utf-8', noStore);
      const mac = normalizeMac(macText);
      if (!mac) return reply(req, res, 400, 'mac: not a MAC address\n');
      const s = nodeScript(base, nb, mac, await readNode(nb.nodesDir, mac));
      if (s.kind === 'refuse' && req.method === 'GET' && (await mayRecord(nb.nodesDir, nb.nodes, mac))) {
        await updateNode(nb.nodesDir, mac, {
          state: 'refused',
          message: 'not in nodes: of osbake.yaml',
          address: client(req).address,
        });
      }
      return reply(req, res, 200, s.script, 'text/plain; charset=utf-8', noStore);
    }
    // A node's identity (nodes: in osbake.yaml), fetched by its installer; 404 for a node without one.
    if (/^\/netboot\/node\/[^/]+$/.test(pathOnly)) {
      // Decoded as every path is (a malformed escape is a 400, not an error of the server).
      const p = checkRequestPath(pathOnly);
      const mac = p.ok ? normalizeMac(p.segments[2] ?? '') : undefined;
      if (!mac) return reply(req, res, 400, 'not a MAC address\n');
      const node = nodeByMac(nb.nodes, mac);
      if (!node) return reply(req, res, 404, 'no such node\n', undefined, noStore);
      return reply(req, res, 200, await identityBlock(node, nb.root), 'text/plain; charset=utf-8', noStore);
    }
    const m = /^\/netboot\/([^/]+)\/([^/]+)$/.exec(pathOnly);
    if (m && m[1] === nb.release.release && nb.release.files.includes(m[2] as string)) {
      return serveFile(req, res, join(nb.release.dir, m[2] as string), nb.release.dir);
    }
    return reply(req, res, 404, 'not found\n');
  }

  const server: Server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    const started = process.hrtime.bigint();
    inFlight.add(res);
    res.on('close', () => {
      inFlight.delete(res);
      if (o.accessLog === false) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const len = res.getHeader('Content-Length') ?? '-';
      const how = res.writableFinished ? '' : ' (aborted by client)';
      log(
        `${new Date().toISOString()} ${req.socket.remoteAddress ?? '-'} "${req.method} ${req.url}" ${res.statusCode} ${len} ${ms.toFixed(1)}ms${how}`,
      );
    });
    handle(req, res).catch((err: unknown) => {
      log(`error: ${req.method} ${req.url}: ${(err as Error).message}`);
      // An unreadable file or directory: 403, and no path in the body.
      if (isPermissionError(err) && !res.headersSent) return reply(req, res, 403, 'forbidden\n');
      // A broken manifest (UserError, ConfigError) is worth showing; anything else stays inside.
      const text =
        err instanceof UserError
          ? `${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`
          : 'internal error\n';
      if (!res.headersSent) reply(req, res, 500, text);
      else res.destroy();
    });
  });
  // CONNECT is not a request for a file: 405, then the connection is closed (Node would just drop
  // it); with a proxy's authority-form target ("CONNECT host:443") 400, as nginx answers both.
  server.on('connect', (req: IncomingMessage, socket: import('node:stream').Duplex) => {
    socket.end(
      req.url?.startsWith('/')
        ? 'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
        : 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    );
  });
  // An HTTP/0.9 request line ("GET /file" and no version) has no headers to wait for: Node's parser
  // would wait for them until its headers timeout. Answered at once with 400 and closed.
  server.on('connection', (socket: Socket) => {
    socket.once('data', (chunk: Buffer) => {
      if (isHttp09RequestLine(chunk))
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
  });
  // Slow or stalled clients: the headers within 20 s (checked every second), as a file server does.
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostInUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostInUrl}:${addr.port}`,
    host: addr.address,
    port: addr.port,
    root,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), o.graceMs ?? 10_000);
        grace.unref();
        const poll = setInterval(() => {
          server.closeIdleConnections();
          if (inFlight.size === 0) clearInterval(poll);
        }, 100);
        poll.unref();
      });
      return closing;
    },
  };
}
