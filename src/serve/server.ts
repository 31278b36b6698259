/**
 * The artifact server: the store read-only over HTTP (GET and HEAD only). Files go through `send`
 * (byte ranges with 206, If-Range, ETag, conditional GET, HEAD, lengths of multi-GB files);
 * directories get a listing; `/` is the web page and `/api/releases`, `/api/builds` the JSON API.
 * Every path is checked (every level of percent-decoding, then realpath under the root), so
 * neither an encoded `..` nor a symlink leaves the root. `close()` stops accepting, lets requests
 * in flight finish for a grace period, then cuts the rest.
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream, statSync } from 'node:fs';
import { access, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { basename, join, relative, sep } from 'node:path';
import rangeParser from 'range-parser';
import send from 'send';
import { netbootNode, normalizeMac } from '../config/netboot.js';
import { UserError } from '../errors.js';
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
import { renderIndexPage, renderListing } from './page.js';
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

/** Content types by file ending; everything else is application/octet-stream. */
export const TYPES: [string, string][] = [
  ['.cdx.json', 'application/vnd.cyclonedx+json'],
  ['.json', 'application/json'],
  ['.sha256', 'text/plain; charset=utf-8'],
  ['.asc', 'text/plain; charset=utf-8'],
  ['SHA256SUMS', 'text/plain; charset=utf-8'],
  ['.tsv', 'text/tab-separated-values; charset=utf-8'],
  ['.txt', 'text/plain; charset=utf-8'],
  ['.yaml', 'text/yaml; charset=utf-8'],
  ['.zst', 'application/zstd'],
  ['.iso', 'application/x-iso9660-image'],
  ['.html', 'text/html; charset=utf-8'],
];

export function contentTypeOf(name: string): string {
  return TYPES.find(([ext]) => name.endsWith(ext))?.[1] ?? 'application/octet-stream';
}

const READ_CHUNK = 1024 * 1024;

/**
 * Computed sidecars for files that have no stored .sha256, by file identity (path, device, inode,
 * size, mtime). The promise is kept, so concurrent requests for one file share one hash; a failed
 * one is forgotten.
 */
export function createShaCache(hash: (file: string) => Promise<string> = hashFile) {
  const cache = new Map<string, Promise<string>>();
  return async function sha256Of(file: string): Promise<string> {
    const st = await stat(file);
    const key = `${file}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    let p = cache.get(key);
    if (!p) {
      p = hash(file);
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * READ_CHUNK }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const sha256Of = createShaCache();

/** Permission errors of the file system: the answer is 403, never a path. */
function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

/** Bodies of the error answers: fixed texts, never a path or a system message. */
const STATUS_BODIES: Record<number, string> = {
  400: 'bad request\n',
  403: 'forbidden\n',
  404: 'not found\n',
  405: 'only GET and HEAD\n',
  412: 'precondition failed\n',
  413: 'request body too large\n',
  416: 'range not satisfiable\n',
};

/** Does the real path pass through a hidden (dot) file or directory below the root? */
function hiddenInside(root: string, real: string): boolean {
  return relative(root, real)
    .split(sep)
    .some((x) => x.startsWith('.'));
}

function reply(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
  headers: Record<string, string> = {},
): void {
  const buf = Buffer.from(body);
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', buf.length);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(req.method === 'HEAD' ? undefined : buf);
}

/**
 * A Range header asking for several ranges → one "bytes=first-last" span covering them (pure);
 * undefined when there is nothing to coalesce (no header, one range, unsatisfiable, malformed).
 */
export function coalesceRanges(header: string | undefined, size: number): string | undefined {
  if (!header?.includes(',')) return undefined;
  const r = rangeParser(size, header, { combine: true });
  if (!Array.isArray(r) || r.length < 2) return undefined;
  return `bytes=${Math.min(...r.map((x) => x.start))}-${Math.max(...r.map((x) => x.end))}`;
}

/** "<mtime hex>-<size hex>", nginx's strong ETag for a file (pure). */
export function strongEtag(mtimeMs: number, size: number): string {
  return `"${Math.floor(mtimeMs / 1000).toString(16)}-${size.toString(16)}"`;
}

/** The values of every Host header of a request (rawHeaders keeps duplicates, headers does not). */
export function hostHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2)
    if (raw[i]?.toLowerCase() === 'host') out.push(raw[i + 1] ?? '');
  return out;
}

/** Does a connection's first bytes hold a request line without an HTTP version (HTTP/0.9)? (pure) */
export function isHttp09RequestLine(first: Buffer): boolean {
  const end = first.indexOf(10);
  if (end === -1) return false;
  const line = first.subarray(0, end).toString('latin1').replace(/\r$/, '');
  return /^[A-Z]+ \S+$/.test(line);
}

/** The most a node's report may hold (its last log lines are a few KiB). */
export const REPORT_MAX_BYTES = 128 * 1024;

/** A request's body as text, or undefined once it exceeds max bytes (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return resolve(undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
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
      if (!netbootNode(nb.config, report.mac) && nb.config.unknown === 'refuse') {
        return reply(req, res, 403, 'not a node of this server\n');
      }
      if (!(await mayRecord(nb.nodesDir, nb.config, report.mac))) {
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
      if (s.kind === 'refuse' && req.method === 'GET' && (await mayRecord(nb.nodesDir, nb.config, mac))) {
        await updateNode(nb.nodesDir, mac, {
          state: 'refused',
          message: 'not in netboot.nodes',
          address: client(req).address,
        });
      }
      return reply(req, res, 200, s.script, 'text/plain; charset=utf-8', noStore);
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
