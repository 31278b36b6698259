/**
 * Write a file so that readers see the old content or the new, never a part: a hidden temporary
 * name in the same directory (".<name>.partial-<pid>-<n>", so git status and directory listings
 * never show it), fsync, rename over the target, fsync the directory; the temporary file is
 * removed on every failure.
 */
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** The hidden temporary name a write to dest uses (pure but for the counter). */
export function hiddenTempName(dest: string): string {
  counter += 1;
  return join(dirname(dest), `.${basename(dest)}.partial-${process.pid}-${counter}`);
}

/** Is this a temporary name of an atomic write (a leftover when its process died)? */
export function isPartialName(name: string): boolean {
  return /^\..+\.partial-\d+(-\d+)?$/.test(name);
}

export async function fsyncPath(path: string, dir = false): Promise<void> {
  const fh = await open(path, dir ? constants.O_RDONLY | constants.O_DIRECTORY : constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The one pattern of every atomic write: `fill` creates the hidden temporary file, which is then
 * fsynced and renamed over dest (directory fsynced); on any failure it is removed.
 */
export async function replaceAtomically(dest: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = hiddenTempName(dest);
  try {
    await fill(tmp);
    await fsyncPath(tmp);
    await rename(tmp, dest);
    await fsyncPath(dirname(dest), true);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeFileAtomically(dest: string, data: string | Uint8Array): Promise<void> {
  await replaceAtomically(dest, (tmp) => writeFile(tmp, data, { flag: 'wx' }));
}
