/**
 * The one way osbake reads a file that a user or a record hands it (configs, image definitions,
 * manifests, store records, node records, keys, var-files): it must be a regular file — a FIFO,
 * device, socket or directory is refused before it is opened for reading, so nothing blocks —,
 * no larger than a cap, and, where the file must be osbake's own or the project's, not a symlink
 * that leaves its tree. Errors name the path and what is wrong; they never quote the content.
 */
import { constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';

export const KIB = 1024;
export const MIB = 1024 * KIB;

/** Size caps by kind of file (a config is small; a manifest of thousands of builds is not). */
export const INPUT_CAPS = {
  config: 1 * MIB,
  manifest: 64 * MIB,
  record: 16 * MIB,
  key: 1 * MIB,
} as const;

export interface InputOptions {
  /** What the file is, for messages ("osbake.yaml", "the node record"). */
  what?: string;
  /** Largest size accepted (bytes). */
  maxBytes: number;
  /**
   * The tree the file must stay in: a symlink is followed only when its target is inside (a
   * project's image.yaml pointing at /etc/shadow is refused). Without it, symlinks are followed.
   */
  within?: string;
  /** Refuse a symlink outright (osbake's own records: store, node records, keys/). */
  noSymlink?: boolean;
}

function kindOf(st: {
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isDirectory(): boolean;
}): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

function refuse(path: string, what: string | undefined, why: string, hint: string): UserError {
  return new UserError('E_INPUT', `${what ? `${what} ` : ''}${path}: ${why}`, hint);
}

/** Is `path` inside `root` (both real paths)? (pure) */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Check that `path` may be read as o says; returns the path to open (the real path). */
async function checkInput(path: string, o: InputOptions): Promise<string> {
  const l = await lstat(path);
  let target = path;
  if (l.isSymbolicLink()) {
    if (o.noSymlink) {
      throw refuse(
        path,
        o.what,
        'is a symlink, and osbake reads its own records only as regular files',
        'replace the link by the file itself',
      );
    }
    target = await realpath(path);
    if (o.within !== undefined) {
      const root = await realpath(o.within).catch(() => resolve(o.within as string));
      if (!isInside(root, target)) {
        throw refuse(
          path,
          o.what,
          `is a symlink out of ${o.within}`,
          'copy the file into the project instead of linking to it',
        );
      }
    }
  }
  const st = l.isSymbolicLink() ? await stat(target) : l;
  if (!st.isFile()) {
    throw refuse(path, o.what, `is ${kindOf(st)}, not a regular file`, 'point osbake at a regular file');
  }
  if (st.size > o.maxBytes) {
    throw refuse(
      path,
      o.what,
      `is ${st.size} bytes, more than the ${o.maxBytes} osbake reads`,
      'check that this is the right file',
    );
  }
  return target;
}

/**
 * Read a user- or record-supplied file as bytes, checked as described above. ENOENT passes through
 * (callers decide whether a missing file is an error); other refusals are E_INPUT user errors.
 */
export async function readInputBytes(path: string, o: InputOptions): Promise<Buffer> {
  const target = await checkInput(path, o);
  // O_NONBLOCK: a FIFO swapped in after the check still cannot block the open; fstat re-checks.
  const fh = await open(
    target,
    constants.O_RDONLY | constants.O_NONBLOCK | (o.noSymlink ? constants.O_NOFOLLOW : 0),
  );
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw refuse(path, o.what, `is ${kindOf(st)}, not a regular file`, 'point osbake at a regular file');
    const buf = Buffer.alloc(Math.min(st.size, o.maxBytes) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > o.maxBytes) {
        throw refuse(
          path,
          o.what,
          `is more than the ${o.maxBytes} bytes osbake reads`,
          'check that this is the right file',
        );
      }
      if (n === buf.length) break;
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/** Read a text file (UTF-8) through readInputBytes; a NUL byte means it is not text. */
export async function readInputText(path: string, o: InputOptions): Promise<string> {
  const buf = await readInputBytes(path, o);
  if (buf.includes(0)) {
    throw refuse(path, o.what, 'is not a text file (it holds NUL bytes)', 'point osbake at the right file');
  }
  return buf.toString('utf8');
}

/**
 * A path that must be a directory (when it exists): a file, FIFO or symlink-to-file where a
 * directory belongs is a user error naming it. Returns whether it exists.
 */
export async function checkDirectory(path: string, what: string): Promise<boolean> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'ENOTDIR')
      throw refuse(
        path,
        what,
        'is below a file, where a directory belongs',
        'remove or rename the file in the way',
      );
    throw err;
  });
  if (!st) return false;
  if (!st.isDirectory()) {
    throw refuse(
      path,
      what,
      `is ${kindOf(st) === 'not a regular file' ? 'a file' : kindOf(st)} where a directory belongs`,
      'remove or rename it',
    );
  }
  return true;
}

/** Where JSON.parse failed, without the text it quotes (V8 quotes the input: it may be a secret). */
export function jsonErrorWhere(err: unknown): string {
  const m = /position (\d+)/.exec((err as Error)?.message ?? '');
  return m ? `at byte ${m[1]}` : 'not JSON';
}

/** Parse JSON read through this module; a syntax error names the file, never its content. */
export function parseInputJson(path: string, text: string, what?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw refuse(
      path,
      what,
      `is not valid JSON (${jsonErrorWhere(err)})`,
      'restore the file from a backup or remove it',
    );
  }
}

/**
 * mkdir -p, one level at a time from the nearest existing ancestor (Node's recursive mkdir never
 * returns on some paths: under /proc it spins at 100 % CPU). Returns the directories it made; a
 * path that cannot be made is an error with its errno code and the path.
 */
export function makeDirsSync(dir: string): string[] {
  const missing: string[] = [];
  let d = resolve(dir);
  while (!existsSync(d)) {
    missing.unshift(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  if (!statSync(dir).isDirectory()) {
    throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR', path: dir });
  }
  return missing;
}
