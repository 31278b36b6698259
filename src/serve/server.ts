/**
 * osbake serve's HTTP server: each request checked as nginx checks it (HTTP/1.x, one valid Host,
 * absolute-form targets, CONNECT and HTTP/0.9 refused), then routed to the store (store-routes.ts)
 * or to serve --netboot's routes (netboot-routes.ts); an access log line per request; close() lets
 * requests in flight finish within a grace time.
 */
import { realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { UserError } from '../errors.js';
import type { NetbootContext } from '../netboot/netboot.js';
import type { CatalogSource } from './catalog.js';
import { hostHeaders, isHttp09RequestLine, isPermissionError, reply } from './http.js';
import { handleNetboot } from './netboot-routes.js';
import { splitRequestTarget, validHost } from './paths.js';
import { handleStore } from './store-routes.js';

export { contentTypeOf, TYPES } from './http.js';

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
      return handleNetboot(req, res, o.netboot, pathOnly, url, { behindProxy: o.behindProxy, log });
    }
    return handleStore(req, res, { o, root, log }, url, pathOnly);
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
  answerAtConnection(server);

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
      closing ??= closeGracefully(server, inFlight, o.graceMs ?? 10_000);
      return closing;
    },
  };
}

/**
 * What is answered at the connection, before Node's parser: CONNECT and HTTP/0.9 request lines;
 * and how long a client may take with its headers.
 */
function answerAtConnection(server: Server): void {
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
}

/** Stop listening; idle connections now, busy ones when their response ends, all after graceMs. */
function closeGracefully(server: Server, inFlight: Set<ServerResponse>, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    const grace = setTimeout(() => server.closeAllConnections(), graceMs);
    grace.unref();
    const poll = setInterval(() => {
      server.closeIdleConnections();
      if (inFlight.size === 0) clearInterval(poll);
    }, 100);
    poll.unref();
  });
}
