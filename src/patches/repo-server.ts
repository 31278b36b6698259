/**
 * A small read-only HTTP server for one unpacked patch bundle, on 127.0.0.1: QEMU's user network
 * lets the build VM reach it as 10.0.2.2:<port>. GET/HEAD only, no directory listings, no path
 * outside the bundle.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { isInside } from '../fsx/input.js';

export interface RepoServer {
  port: number;
  /** URL as seen from the build VM. */
  guestUrl: string;
  close(): Promise<void>;
}

/** Resolve a request path inside root, or undefined if it escapes it (pure). */
export function resolveInside(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0] ?? '');
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const p = normalize(join(root, decoded));
  return isInside(root, p) ? p : undefined;
}

export async function startRepoServer(dir: string, onRequest?: (line: string) => void): Promise<RepoServer> {
  const root = await realpath(dir);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const log = (status: number) => onRequest?.(`${req.method} ${req.url} ${status}`);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return log(405);
      }
      const file = resolveInside(root, req.url ?? '/');
      const real = file ? await realpath(file).catch(() => undefined) : undefined;
      const st =
        real && real !== root && isInside(root, real) ? await stat(real).catch(() => undefined) : undefined;
      if (!real || !st?.isFile()) {
        res.writeHead(404).end();
        return log(404);
      }
      res.writeHead(200, { 'Content-Length': st.size, 'Content-Type': 'application/octet-stream' });
      if (req.method === 'HEAD') {
        res.end();
        return log(200);
      }
      createReadStream(real).pipe(res);
      log(200);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    guestUrl: `http://10.0.2.2:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
