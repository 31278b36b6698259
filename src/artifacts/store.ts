/**
 * The local artifact store: builds/, repos/<distro>/, releases/. Files appear under their final
 * name only when complete: copied to a hidden temporary name, fsynced, then renamed.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { replaceAtomically, writeFileAtomically } from '../config/atomic.js';

export function buildsDir(storeDir: string): string {
  return join(storeDir, 'builds');
}

/** Put src at dest atomically: rename when on the same file system, else copy + fsync + rename. */
export async function placeFileAtomic(src: string, dest: string, move = false): Promise<void> {
  const copy = (tmp: string) => pipeline(createReadStream(src), createWriteStream(tmp, { flags: 'wx' }));
  await replaceAtomically(dest, async (tmp) => {
    if (!move) return copy(tmp);
    try {
      await rename(src, tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await copy(tmp);
    }
  });
}

export async function writeTextAtomic(dest: string, text: string): Promise<void> {
  await writeFileAtomically(dest, text);
}
