/**
 * The HTTP pieces of the artifact server that hold no server state: content types, sidecar
 * hashes, the fixed error bodies, replies, ranges, ETags, Host headers, request bodies, and the
 * recognition of an HTTP/0.9 request line. Pure where they can be.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { relative, sep } from 'node:path';
import rangeParser from 'range-parser';

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

export const READ_CHUNK = 1024 * 1024;

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

export const sha256Of = createShaCache();

/** Permission errors of the file system: the answer is 403, never a path. */
export function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

/** Bodies of the error answers: fixed texts, never a path or a system message. */
export const STATUS_BODIES: Record<number, string> = {
  400: 'bad request\n',
  403: 'forbidden\n',
  404: 'not found\n',
  405: 'only GET and HEAD\n',
  412: 'precondition failed\n',
  413: 'request body too large\n',
  416: 'range not satisfiable\n',
};

/** Does the real path pass through a hidden (dot) file or directory below the root? */
export function hiddenInside(root: string, real: string): boolean {
  return relative(root, real)
    .split(sep)
    .some((x) => x.startsWith('.'));
}

export function reply(
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
export function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
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
