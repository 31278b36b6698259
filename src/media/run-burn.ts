/**
 * osbake burn (the verb's entry): list candidate drives, or check a device, prepare the image and
 * its bmap, confirm, write, verify; several drives go to burn-many.ts, a file to burn-file.ts.
 * Refusals come before any long work and before the device is opened.
 */
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { createNullLogger } from '../log/logger.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { mappedBytes } from './bmap-format.js';
import { writeImage } from './burn.js';
import { type BurnIo, type BurnOptions, confirm, prepareSource, rate, refusalError } from './burn-common.js';
import { burnToFile, classifyTarget } from './burn-file.js';
import type { HoleMode, WriteImageResult } from './burn-io.js';
import { burnMany } from './burn-many.js';
import {
  assessTarget,
  type Candidate,
  candidates,
  findDevice,
  type LsblkNode,
  parseForce,
  readSystemState,
  remainingRefusals,
} from './devices.js';

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

/** --holes, and an image without a device (or the reverse): usage errors before anything is read. */
function checkBurnArguments(o: BurnOptions): HoleMode {
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
  return holes;
}

/** What one write did, as the lines a person reads (pure). */
function writeReport(r: WriteImageResult, device: string, ranges: number): string {
  return [
    `wrote ${formatBytes(r.written)} to ${device} in ${r.writeSeconds.toFixed(1)} s (${rate(r.written, r.writeSeconds)}, synced); holes ${r.holes}`,
    r.verifySeconds !== undefined
      ? `verified ${ranges} range(s) read back from ${device} in ${r.verifySeconds.toFixed(1)} s: all match the bmap`
      : 'not verified (--no-verify)',
    '',
  ].join('\n');
}

/** One drive: checked, the image prepared, checked against its size, confirmed, written, read back. */
async function burnOneDrive(
  o: BurnOptions,
  disk: LsblkNode,
  state: Awaited<ReturnType<typeof readSystemState>>,
  io: BurnIo,
): Promise<WriteImageResult | undefined> {
  const { log, say, out, forced, holes } = io;
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
      out.write(writeReport(r, disk.path, bmap.ranges.length));
      return r;
    } finally {
      untrap();
    }
  } finally {
    await prepared.cleanup();
  }
}

/** The burn verb. Returns the write result (undefined for listings and dry runs). */
export async function runBurn(o: BurnOptions): Promise<WriteImageResult | undefined> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const say = (line: string) => err.write(`${line}\n`);
  const log = o.log ?? createNullLogger();
  const forced = parseForce(o.force);
  const holes = checkBurnArguments(o);
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
  return burnOneDrive(o, disk, state, { log, say, out, forced, holes });
}

/** Kernel names of whole disks and partitions (sda, vdb1, nvme0n1, mmcblk0, loop3). */
export type { BurnOptions } from './burn-common.js';
