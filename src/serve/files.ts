/**
 * Answering with the store's contents: a directory listing (visible entries inside the root only)
 * and a file with ranges (send; several ranges coalesced into one span, a strong ETag, If-Range).
 */
import { statSync } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join, relative, sep } from 'node:path';
import send from 'send';
import {
  coalesceRanges,
  contentTypeOf,
  hiddenInside,
  isPermissionError,
  READ_CHUNK,
  reply,
  STATUS_BODIES,
  strongEtag,
} from './http.js';
import { renderListing } from './page.js';
import { isInside } from './paths.js';

export async function serveDirectory(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  dir: string,
  urlPath: string,
): Promise<void> {
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

export function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: string,
  base: string,
  log: (line: string) => void,
): void {
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
