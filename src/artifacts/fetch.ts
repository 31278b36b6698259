/**
 * Fetch one artifact from an osbake mirror (HTTP) into the local store: streamed to a hidden
 * temporary name while hashing, refused unless size and SHA-256 match, then fsynced and renamed.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { mirrorUrl } from './naming.js';
import { placeFileAtomic } from './store.js';

export interface FetchExpect {
  /** Path relative to the store (and the mirror) root. */
  path: string;
  sha256: string;
  size: number;
}

export async function fetchArtifactToStore(
  mirror: string,
  a: FetchExpect,
  dest: string,
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void; fetchImpl?: typeof fetch } = {},
): Promise<void> {
  const url = mirrorUrl(mirror, a.path);
  const res = await (opts.fetchImpl ?? fetch)(url, { signal: opts.signal }).catch((err: unknown) => {
    throw new UserError(
      'E_FETCH',
      `cannot fetch ${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? String(err)}`,
      'check that the mirror (osbake.yaml mirrors.osbake) is up and reachable',
    );
  });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new UserError(
      'E_FETCH',
      `cannot fetch ${url}: HTTP ${res.status}`,
      'publish the artifact to the mirror',
    );
  }
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.download-${process.pid}`;
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      opts.onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      tap,
      createWriteStream(tmp, { flags: 'wx' }),
    );
    const sha = hash.digest('hex');
    if (bytes !== a.size || sha !== a.sha256) {
      throw new UserError(
        'E_CHECKSUM',
        `${url} has ${bytes} bytes and sha256 ${sha}, but manifest.yaml records ${a.size} bytes and ${a.sha256}`,
        'the mirror holds a different file: publish the release again or fix manifest.yaml',
      );
    }
    await placeFileAtomic(tmp, dest, true);
  } finally {
    await rm(tmp, { force: true });
  }
}
