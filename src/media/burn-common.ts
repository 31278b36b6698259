/**
 * What the ways of osbake burn share: its options, the confirmation (typing the device's name),
 * the image prepared from what the argument names (its release checked first), rates.
 */
import { createInterface } from 'node:readline/promises';
import { UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { formatBytes } from '../log/progress.js';
import type { ByteSink } from './bmap.js';
import type { HoleMode } from './burn-io.js';
import { locateImage, type PreparedImage, prepareImage } from './burn-source.js';
import type { parseForce, Refusal } from './devices.js';

/** What a burn writes to and with: its log, its lines, the forced checks, the hole mode. */
export interface BurnIo {
  log: Logger;
  say: (l: string) => void;
  out: TextOut;
  forced: ReturnType<typeof parseForce>;
  holes: HoleMode;
}

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
  out?: TextOut;
  err?: TextOut;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  log?: Logger;
  /** The log's file, named when writing starts and in errors. */
  logFile?: string;
  progress?: ByteSink;
  tempDir?: string;
  /** Test hook: after the write and fsync, before the read-back. */
  beforeVerify?: () => Promise<void>;
}

export async function confirm(o: BurnOptions, device: string, name: string, summary: string): Promise<void> {
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

export function rate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(Math.round(bytes / seconds))}/s` : '-';
}

/** The image as the argument names it, its release checked first (when it is one), made writable. */
export async function prepareSource(
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
