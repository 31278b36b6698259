/**
 * A cache entry that is a directory (the installer OS, a stick's payload): made once, under a
 * lock (another osbake process making the same entry is waited for, and says whose it is), in a
 * scratch directory, then renamed into place whole — it appears complete or not at all — and
 * recorded as osbake's own (osbake clean may remove it). Complete means: its marker file exists
 * (written last by `make`).
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../exec/run.js';
import { own } from '../fsx/owned.js';
import type { Logger } from '../log/logger.js';
import { acquireLock } from './lock.js';

export interface CacheDirOptions {
  /** The entry (<workDir>/cache/<kind>/<key>). */
  dir: string;
  /** File inside the entry that `make` writes last. */
  marker: string;
  /** For lock messages: "the installer OS cache entry …". */
  what: string;
  /** Made empty for `make`, removed afterwards. */
  scratch: string;
  log: Logger;
  progress: (t: string) => void;
  /** Fill `out` (inside scratch); scratch is `make`'s too. */
  make: (out: string, scratch: string) => Promise<void>;
}

/** The entry, made if it is not complete; `cached`: it was there already. */
export async function ensureCacheDir(o: CacheDirOptions): Promise<{ cached: boolean }> {
  const complete = () => existsSync(join(o.dir, o.marker));
  if (complete()) return { cached: true };
  await mkdir(dirname(o.dir), { recursive: true });
  const release = await acquireLock(o.dir, {
    what: o.what,
    waitMs: 30 * 60_000,
    staleMs: 60_000,
    onWait: o.progress,
  });
  try {
    if (complete()) return { cached: true };
    await rm(o.scratch, { recursive: true, force: true });
    const out = join(o.scratch, 'out');
    await mkdir(out, { recursive: true });
    await o.make(out, o.scratch);
    if (!existsSync(join(out, o.marker))) throw new Error(`cache entry ${o.dir}: ${o.marker} was not made`);
    await run(['sync', '-f', out], { log: o.log });
    // One rename of the whole directory (an incomplete entry left by a crash is replaced).
    await rm(o.dir, { recursive: true, force: true });
    await rename(out, o.dir);
    own(o.dir, 'cache');
    return { cached: false };
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
    await release();
  }
}
