/**
 * Write a file so that readers see the old content or the new, never a part: a hidden temporary
 * name in the same directory (".<name>.partial-<pid>-<n>", so git status and directory listings
 * never show it), fsync, rename over the target, fsync the directory; the temporary file is
 * removed on every failure.
 */
import { constants } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { disown, own } from '../fsx/owned.js';

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
  // The file being replaced keeps its mode and owner; a write-protected one is not replaced.
  const before = await lstat(dest).catch(() => undefined);
  if (before?.isFile() && (before.mode & 0o222) === 0) {
    throw new UserError(
      'E_READONLY',
      `${dest} is write-protected (mode ${(before.mode & 0o7777).toString(8)}): osbake does not replace it`,
      `make it writable (chmod u+w ${dest}) if osbake should update it`,
    );
  }
  const tmp = hiddenTempName(dest);
  try {
    await fill(tmp);
    own(tmp, 'temp');
    if (before?.isFile()) {
      await chmod(tmp, before.mode & 0o7777);
      if (process.getuid?.() === 0) await chown(tmp, before.uid, before.gid);
    }
    await fsyncPath(tmp);
    await rename(tmp, dest);
    disown(tmp);
    await fsyncPath(dirname(dest), true);
  } catch (err) {
    await rm(tmp, { force: true });
    disown(tmp);
    throw err;
  }
}

export async function writeFileAtomically(dest: string, data: string | Uint8Array): Promise<void> {
  await replaceAtomically(dest, (tmp) => writeFile(tmp, data, { flag: 'wx' }));
}
