/**
 * The local artifact store: builds/, repos/<distro>/, releases/. Files appear under their final
 * name only when complete: copied to a hidden temporary name, fsynced, then renamed.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncPath, hiddenTempName, writeFileAtomically } from '../config/atomic.js';

export function buildsDir(storeDir: string): string {
  return join(storeDir, 'builds');
}

/** Put src at dest atomically: rename when on the same file system, else copy + fsync + rename. */
export async function placeFileAtomic(src: string, dest: string, move = false): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = hiddenTempName(dest);
  try {
    if (move) {
      try {
        await rename(src, tmp);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await pipeline(createReadStream(src), createWriteStream(tmp, { flags: 'wx' }));
      }
    } else {
      await pipeline(createReadStream(src), createWriteStream(tmp, { flags: 'wx' }));
    }
    await fsyncPath(tmp);
    await rename(tmp, dest);
    await fsyncPath(dirname(dest), true);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeTextAtomic(dest: string, text: string): Promise<void> {
  await writeFileAtomically(dest, text);
}
