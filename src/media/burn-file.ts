/**
 * osbake burn IMAGE FILE (as `bmaptool copy`): what the second argument names — a block device or
 * a regular file —, and the write into a file: a sparse temp beside it, read back, fsync, rename.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import type { Logger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { mappedBytes } from './bmap-format.js';
import { writeImage } from './burn.js';
import { type BurnOptions, confirm, prepareSource, rate } from './burn-common.js';
import type { WriteImageResult } from './burn-io.js';

const DISK_NAME =
  /^(sd[a-z]{1,3}|vd[a-z]{1,3}|hd[a-z]{1,3}|xvd[a-z]{1,3}|nvme\d+n\d+|mmcblk\d+|loop\d+)(p?\d+)?$/;

/**
 * What the second argument names (before any work): a block device (the drive checks follow), or
 * a regular file to write the image into, as `bmaptool copy` does — an existing file or a new one
 * in an existing directory. A path under /dev/ that does not exist is never a new file.
 */
export async function classifyTarget(path: string): Promise<'block' | 'file'> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) {
    // "vda", "sdb": a drive's kernel name given without /dev/ is never taken for a new file.
    if (!path.includes('/') && DISK_NAME.test(path)) {
      throw new UserError(
        'E_BURN_TARGET',
        `${path} looks like a drive name: did you mean /dev/${path}?`,
        `give /dev/${path} for the drive, or ./${path} to write a file of that name`,
      );
    }
    if (path.startsWith('/dev/'))
      throw new UserError(
        'E_BURN_NO_DEVICE',
        `no block device ${path}`,
        'osbake burn (without arguments) lists the disks',
      );
    const dir = dirname(resolve(path));
    const d = await stat(dir).catch(() => undefined);
    if (!d?.isDirectory())
      throw new UserError(
        'E_BURN_TARGET',
        `cannot write ${path}: no directory ${dir}`,
        'give a block device (osbake burn lists them) or a file in an existing directory',
      );
    return 'file';
  }
  if (st.isBlockDevice()) return 'block';
  if (st.isFile()) return 'file';
  throw new UserError(
    'E_BURN_TARGET',
    `${path} is ${st.isDirectory() ? 'a directory' : 'neither a block device nor a regular file'}`,
    'give a whole disk such as /dev/sdb, or the path of an image file to write',
  );
}

/**
 * Write the image into a regular file (bmaptool copy IMAGE FILE): a new sparse file beside the
 * target, the mapped ranges written and read back, fsync, then renamed over the target — an
 * existing file is replaced only by a complete, verified copy.
 */
export async function burnToFile(
  o: BurnOptions,
  dest: string,
  io: { log: Logger; say: (l: string) => void; out: TextOut },
): Promise<WriteImageResult | undefined> {
  const { log, say, out } = io;
  const existing = await stat(dest).catch(() => undefined);
  const progress = o.progress ?? new ByteProgress();
  const prepared = await prepareSource(o, { log, say }, progress, async (source) => {
    const src = await stat(source);
    if (existing && src.dev === existing.dev && src.ino === existing.ino) {
      throw new UserError(
        'E_BURN_SAME_FILE',
        `${dest} is the image itself`,
        'write the image to another file or to a drive',
      );
    }
  });
  const temp = join(dirname(resolve(dest)), `.${basename(dest)}.partial-${process.pid}`);
  try {
    const { bmap } = prepared;
    const summary = `${prepared.what}: ${formatBytes(bmap.imageSize)}, ${formatBytes(mappedBytes(bmap))} of data (bmap: ${prepared.bmapFrom}) → file ${dest}${existing ? ' (replacing it)' : ''}`;
    if (o.dryRun) {
      out.write(`dry run: all checks passed; would write ${summary}\n`);
      return undefined;
    }
    // Replacing a file the user has is asked for, as writing a drive is (or --yes).
    if (existing) await confirm(o, dest, basename(dest), summary);
    const ac = new AbortController();
    const untrap = trapSignals(ac, (s) => say(`osbake: ${s} received: stopping; ${dest} is unchanged`));
    try {
      say(`writing ${summary}${o.logFile ? ` (log: ${o.logFile})` : ''}`);
      await rm(temp, { force: true });
      const r = await writeImage({
        device: temp,
        file: true,
        image: prepared.image,
        compressed: prepared.compressed,
        bmap,
        verify: o.verify !== false,
        holes: 'keep',
        log,
        progress,
        say,
        signal: ac.signal,
        beforeVerify: o.beforeVerify,
      });
      await rename(temp, dest);
      await syncDir(dirname(resolve(dest)));
      out.write(
        `wrote ${formatBytes(r.written)} to ${dest} in ${r.writeSeconds.toFixed(1)} s (${rate(r.written, r.writeSeconds)}, synced); holes ${r.holes}\n`,
      );
      out.write(
        r.verifySeconds !== undefined
          ? `verified ${bmap.ranges.length} range(s) read back from ${dest} in ${r.verifySeconds.toFixed(1)} s: all match the bmap\n`
          : 'not verified (--no-verify)\n',
      );
      return r;
    } finally {
      untrap();
      await rm(temp, { force: true });
    }
  } finally {
    await prepared.cleanup();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
