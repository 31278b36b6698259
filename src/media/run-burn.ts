/**
 * osbake burn: list candidate drives, or check a device, prepare the image and its bmap, confirm,
 * write, verify. Refusals come before any long work and before the device is opened.
 */
import { createInterface } from 'node:readline/promises';
import { InterruptedError, UserError } from '../errors.js';
import { createNullLogger, type Logger } from '../log/logger.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import type { ByteSink } from './bmap.js';
import { mappedBytes } from './bmap-format.js';
import { type HoleMode, type WriteImageResult, writeImage } from './burn.js';
import { locateImage, prepareImage } from './burn-source.js';
import {
  assessTarget,
  type Candidate,
  candidates,
  findDevice,
  parseForce,
  type Refusal,
  readSystemState,
  remainingRefusals,
} from './devices.js';

export interface BurnOptions {
  source?: string;
  device?: string;
  projectDir: string;
  force?: string | boolean;
  yes?: boolean;
  verify?: boolean;
  json?: boolean;
  dryRun?: boolean;
  holes?: string;
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

/** SIGINT/SIGTERM/SIGHUP abort the write once (between chunks); returns a function removing the handlers. */
function trapSignals(ac: AbortController, onSignal: (s: NodeJS.Signals) => void): () => void {
  const handler = (s: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    onSignal(s);
    ac.abort(new InterruptedError(s));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
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
  const prepared = await prepareImage(await locateImage(o.source, o.projectDir), {
    log,
    say,
    progress,
    tempDir: o.tempDir,
  });
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
