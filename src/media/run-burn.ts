/**
 * osbake burn: list candidate drives, or check a device, prepare the image and its bmap, confirm,
 * write, verify. Refusals come before any long work and before the device is opened.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { createNullLogger, type Logger } from '../log/logger.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import type { ByteSink } from './bmap.js';
import { mappedBytes } from './bmap-format.js';
import { type TargetResult, writeImage, writeImageToMany } from './burn.js';
import type { HoleMode, WriteImageResult } from './burn-io.js';
import { locateImage, type PreparedImage, prepareImage } from './burn-source.js';
import {
  assessTarget,
  type Candidate,
  candidates,
  findDevice,
  type LsblkNode,
  parseForce,
  type Refusal,
  readSystemState,
  remainingRefusals,
} from './devices.js';

export interface BurnOptions {
  source?: string;
  device?: string;
  /** Several drives at once (osbake burn IMAGE DEV1 DEV2 ...); device is then unset. */
  devices?: string[];
  projectDir: string;
  force?: string | boolean;
  yes?: boolean;
  verify?: boolean;
  json?: boolean;
  dryRun?: boolean;
  holes?: string;
  /** --bmap FILE: this block map instead of the one beside the image. */
  bmap?: string;
  /** --nobmap: write every byte of the image. */
  noBmap?: boolean;
  /**
   * For a release's installer: check the release first (its signature against keys/, the
   * installer's recorded checksum); returns the line to show, throws when it does not hold.
   */
  checkRelease?: (release: string) => Promise<string>;
  out?: Pick<NodeJS.WriteStream, 'write'>;
  err?: Pick<NodeJS.WriteStream, 'write'>;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  log?: Logger;
  /** The log's file, named when writing starts and in errors. */
  logFile?: string;
  progress?: ByteSink;
  tempDir?: string;
  /** Test hook: after the write and fsync, before the read-back. */
  beforeVerify?: () => Promise<void>;
}

const HOLE_MODES: readonly HoleMode[] = ['auto', 'zero', 'keep'];

const CHECK_WORDS: Record<string, string> = {
  removable: 'not removable',
  mounted: 'in use',
  root: 'holds /',
  system: 'system disk',
  readonly: 'read-only',
  size: 'too small',
  'whole-disk': 'a partition',
};

/** The candidate table (pure). */
export function formatCandidates(list: readonly Candidate[]): string {
  if (list.length === 0) return 'no disks found (lsblk lists none with a size)\n';
  return formatTable(
    ['DEVICE', 'SIZE', 'MODEL', 'SERIAL', 'TRAN', 'BURN'],
    list.map((c) => [
      c.path,
      formatBytes(c.size),
      c.model || '-',
      c.serial || '-',
      c.tran || '-',
      c.refusals.length === 0 ? 'ok' : `refused: ${c.refusals.map((r) => CHECK_WORDS[r] ?? r).join(', ')}`,
    ]),
  );
}

/** One error for the refusals left after --force (pure). */
export function refusalError(device: string, left: readonly Refusal[]): UserError {
  const first = left[0];
  if (!first) throw new Error('refusalError: nothing refused');
  const forceable = left.every((r) => r.check !== 'readonly' && r.check !== 'whole-disk');
  const hint =
    left.length === 1
      ? first.hint
      : `${first.hint}${forceable ? `; to override: --force ${left.map((r) => r.check).join(',')}` : ''}`;
  return new UserError(
    `E_BURN_${first.check.toUpperCase().replace('-', '_')}`,
    `refusing to write ${device}: ${left.map((r) => r.message).join('; ')}`,
    hint,
  );
}

async function confirm(o: BurnOptions, device: string, name: string, summary: string): Promise<void> {
  if (o.yes) return;
  const input = o.input ?? process.stdin;
  if (!input.isTTY) {
    throw new UserError(
      'E_BURN_CONFIRM',
      `not writing ${device}: no terminal to confirm on`,
      'pass --yes to write without asking (scripts), after checking the device with osbake burn --dry-run',
    );
  }
  const rl = createInterface({ input, output: process.stderr });
  try {
    const answer = (
      await rl.question(
        `${summary}\nEverything on ${device} will be lost. Type the device name (${name}) to confirm: `,
      )
    ).trim();
    if (answer !== name && answer !== device) {
      throw new UserError(
        'E_BURN_ABORTED',
        `not confirmed ("${answer}" is not ${name}); nothing was written`,
        `type ${name} exactly`,
      );
    }
  } finally {
    rl.close();
  }
}

function rate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(Math.round(bytes / seconds))}/s` : '-';
}

/** The burn verb. Returns the write result (undefined for listings and dry runs). */
export async function runBurn(o: BurnOptions): Promise<WriteImageResult | undefined> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const say = (line: string) => err.write(`${line}\n`);
  const log = o.log ?? createNullLogger();
  const forced = parseForce(o.force);
  const holes = (o.holes ?? 'auto') as HoleMode;
  if (!HOLE_MODES.includes(holes)) {
    throw new UserError(
      'E_USAGE',
      `--holes ${o.holes} is not one of ${HOLE_MODES.join(', ')}`,
      'default: auto',
    );
  }
  if (o.source && !o.device) {
    // One argument is never a listing: "osbake burn /dev/sdb" (no image) or "osbake burn img" (no device).
    const looksLikeDevice = o.source.startsWith('/dev/');
    throw new UserError(
      'E_USAGE',
      looksLikeDevice
        ? `osbake burn needs an image before the device (${o.source})`
        : `osbake burn ${o.source} needs the device to write to`,
      'osbake burn <image|release> <device>; osbake burn alone lists the drives',
    );
  }
  const state = await readSystemState(log);

  if (!o.device) {
    const list = candidates(state);
    if (o.json) out.write(`${JSON.stringify(list, null, 2)}\n`);
    else {
      out.write(formatCandidates(list));
      out.write('\nwrite an image: osbake burn <image|release> <device>\n');
    }
    return undefined;
  }
  if (!o.source)
    throw new UserError(
      'E_USAGE',
      'osbake burn needs an image before the device',
      'osbake burn <image|release> <device>',
    );

  if (o.devices && o.devices.length > 1) {
    await burnMany(o, o.devices, state, { log, say, out, forced, holes });
    return undefined;
  }
  const target = await classifyTarget(o.device);
  if (target === 'file') return burnToFile(o, o.device, { log, say, out });

  const disk = findDevice(state, o.device);
  if (!disk) {
    throw new UserError(
      'E_BURN_NO_DEVICE',
      `no block device ${o.device}`,
      'osbake burn (without arguments) lists the disks',
    );
  }
  // Everything but the size first: no conversion or bmap work for a device that is refused anyway.
  const early = remainingRefusals(
    assessTarget(disk, state, 0).filter((r) => r.check !== 'size'),
    forced,
  );
  if (early.length > 0) throw refusalError(disk.path, early);

  const progress = o.progress ?? new ByteProgress();
  const prepared = await prepareSource(o, { log, say }, progress);
  try {
    const { bmap } = prepared;
    const late = remainingRefusals(
      assessTarget(disk, state, bmap.imageSize).filter((r) => r.check === 'size'),
      forced,
    );
    if (late.length > 0) throw refusalError(disk.path, late);
    const summary = `${prepared.what}: ${formatBytes(bmap.imageSize)}, ${formatBytes(mappedBytes(bmap))} of data (bmap: ${prepared.bmapFrom}) → ${disk.path} (${formatBytes(disk.size)} ${[disk.model, disk.serial].filter(Boolean).join(' ')})`;
    if (o.dryRun) {
      out.write(`dry run: all checks passed; would write ${summary}\n`);
      return undefined;
    }
    await confirm(o, disk.path, disk.name, summary);
    const ac = new AbortController();
    const untrap = trapSignals(ac, (s) =>
      say(`osbake: ${s} received: stopping; ${disk.path} holds a partial image`),
    );
    try {
      say(`writing ${summary}${o.logFile ? ` (log: ${o.logFile})` : ''}`);
      log.info({ device: disk.path, image: prepared.image, holes, verify: o.verify !== false }, 'burn start');
      const r = await writeImage({
        device: disk.path,
        image: prepared.image,
        compressed: prepared.compressed,
        bmap,
        deviceSize: disk.size,
        verify: o.verify !== false,
        holes,
        log,
        progress,
        say,
        signal: ac.signal,
        beforeVerify: o.beforeVerify,
      });
      out.write(
        `wrote ${formatBytes(r.written)} to ${disk.path} in ${r.writeSeconds.toFixed(1)} s (${rate(r.written, r.writeSeconds)}, synced); holes ${r.holes}\n`,
      );
      if (r.verifySeconds !== undefined) {
        out.write(
          `verified ${bmap.ranges.length} range(s) read back from ${disk.path} in ${r.verifySeconds.toFixed(1)} s: all match the bmap\n`,
        );
      } else {
        out.write('not verified (--no-verify)\n');
      }
      return r;
    } finally {
      untrap();
    }
  } finally {
    await prepared.cleanup();
  }
}

/** Kernel names of whole disks and partitions (sda, vdb1, nvme0n1, mmcblk0, loop3). */
const DISK_NAME =
  /^(sd[a-z]{1,3}|vd[a-z]{1,3}|hd[a-z]{1,3}|xvd[a-z]{1,3}|nvme\d+n\d+|mmcblk\d+|loop\d+)(p?\d+)?$/;

/**
 * What the second argument names (before any work): a block device (the drive checks follow), or
 * a regular file to write the image into, as `bmaptool copy` does — an existing file or a new one
 * in an existing directory. A path under /dev/ that does not exist is never a new file.
 */
async function classifyTarget(path: string): Promise<'block' | 'file'> {
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
async function burnToFile(
  o: BurnOptions,
  dest: string,
  io: { log: Logger; say: (l: string) => void; out: Pick<NodeJS.WriteStream, 'write'> },
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

/** The image as the argument names it, its release checked first (when it is one), made writable. */
async function prepareSource(
  o: BurnOptions,
  io: { log: Logger; say: (l: string) => void },
  progress: ByteSink,
  checkSource?: (path: string) => Promise<void>,
): Promise<PreparedImage> {
  const located = await locateImage(o.source as string, o.projectDir);
  if (located.release && o.checkRelease) io.say(await o.checkRelease(located.release));
  await checkSource?.(located.path);
  return prepareImage(located, {
    log: io.log,
    say: io.say,
    progress,
    tempDir: o.tempDir,
    bmapFile: o.bmap,
    noBmap: o.noBmap,
  });
}

/** The per-drive table of a burn to several drives (pure). */
export function formatManyResults(
  rows: readonly { device: string; size: number; model: string; serial: string; result: TargetResult }[],
): string {
  return formatTable(
    ['DEVICE', 'SIZE', 'MODEL', 'SERIAL', 'RESULT', 'WRITE', 'VERIFY'],
    rows.map((r) => [
      r.device,
      formatBytes(r.size),
      r.model || '-',
      r.serial || '-',
      r.result.ok ? 'ok' : `FAILED: ${errorText(r.result.error)}`,
      r.result.writeSeconds !== undefined ? `${r.result.writeSeconds.toFixed(1)} s` : '-',
      r.result.verifySeconds !== undefined ? `${r.result.verifySeconds.toFixed(1)} s` : '-',
    ]),
  );
}

function errorText(err: unknown): string {
  if (err instanceof UserError) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * osbake burn IMAGE DEV1 DEV2 ...: every drive passes the same checks first (any refusal stops
 * the burn before anything is written), the image is prepared and read once, written to all,
 * each read back; a drive that fails does not stop the others; a table (or --json) at the end
 * and exit 1 when any drive failed.
 */
async function burnMany(
  o: BurnOptions,
  devices: readonly string[],
  state: Awaited<ReturnType<typeof readSystemState>>,
  io: {
    log: Logger;
    say: (l: string) => void;
    out: Pick<NodeJS.WriteStream, 'write'>;
    forced: ReturnType<typeof parseForce>;
    holes: HoleMode;
  },
): Promise<void> {
  const { log, say, out, forced } = io;
  const disks: LsblkNode[] = [];
  for (const d of devices) {
    if ((await classifyTarget(d)) === 'file') {
      throw new UserError(
        'E_USAGE',
        `${d} is a file: several targets at once are drives only`,
        'write files one at a time',
      );
    }
    const disk = findDevice(state, d);
    if (!disk)
      throw new UserError(
        'E_BURN_NO_DEVICE',
        `no block device ${d}`,
        'osbake burn (without arguments) lists the disks',
      );
    if (disks.some((x) => x.path === disk.path)) {
      throw new UserError('E_USAGE', `${disk.path} is named twice`, 'name each drive once');
    }
    const early = remainingRefusals(
      assessTarget(disk, state, 0).filter((r) => r.check !== 'size'),
      forced,
    );
    if (early.length > 0) throw refusalError(disk.path, early);
    disks.push(disk);
  }
  const progress = o.progress ?? new ByteProgress();
  const prepared = await prepareSource(o, { log, say }, progress);
  try {
    const { bmap } = prepared;
    for (const disk of disks) {
      const late = remainingRefusals(
        assessTarget(disk, state, bmap.imageSize).filter((r) => r.check === 'size'),
        forced,
      );
      if (late.length > 0) throw refusalError(disk.path, late);
    }
    const list = disks.map((d) => d.path).join(', ');
    const summary = `${prepared.what}: ${formatBytes(bmap.imageSize)}, ${formatBytes(mappedBytes(bmap))} of data (bmap: ${prepared.bmapFrom}) → ${disks.length} drives: ${list}`;
    if (o.dryRun) {
      out.write(`dry run: all checks passed; would write ${summary}\n`);
      return;
    }
    await confirm(o, list, disks.map((d) => d.name).join(' '), summary);
    const ac = new AbortController();
    const untrap = trapSignals(ac, (s) =>
      say(`osbake: ${s} received: stopping; ${list} hold partial images`),
    );
    let results: TargetResult[];
    try {
      say(`writing ${summary}${o.logFile ? ` (log: ${o.logFile})` : ''}`);
      results = await writeImageToMany({
        targets: disks.map((d) => ({ device: d.path, deviceSize: d.size })),
        image: prepared.image,
        compressed: prepared.compressed,
        bmap,
        verify: o.verify !== false,
        holes: io.holes,
        log,
        progress,
        say,
        signal: ac.signal,
        beforeVerify: o.beforeVerify,
        onFailed: (device, err) => say(`${device}: FAILED (${errorText(err)}); the other drives go on`),
      });
    } finally {
      untrap();
    }
    const rows = disks.map((d, i) => ({
      device: d.path,
      size: d.size,
      model: d.model ?? '',
      serial: d.serial ?? '',
      result: results[i] as TargetResult,
    }));
    if (o.json) {
      out.write(
        `${JSON.stringify(
          rows.map((r) => ({
            device: r.device,
            size: r.size,
            model: r.model,
            serial: r.serial,
            ok: r.result.ok,
            ...(r.result.ok
              ? {
                  written: r.result.written,
                  write_s: r.result.writeSeconds,
                  verify_s: r.result.verifySeconds ?? null,
                  holes: r.result.holes,
                }
              : { error: errorText(r.result.error) }),
          })),
          null,
          2,
        )}\n`,
      );
    } else out.write(formatManyResults(rows));
    const failed = rows.filter((r) => !r.result.ok);
    if (failed.length > 0) {
      throw new UserError(
        'E_BURN_PARTIAL',
        `${rows.length - failed.length} of ${rows.length} drives written and verified; failed: ${failed.map((r) => r.device).join(', ')}`,
        'see the table; replace or re-check the failed drives, then burn them again',
      );
    }
  } finally {
    await prepared.cleanup();
  }
}
