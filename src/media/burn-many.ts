/**
 * osbake burn IMAGE DEV1 DEV2 ...: every drive checked before anything is written, the image read
 * once and written to all, each read back; a drive that fails does not stop the others; the table.
 */
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { mappedBytes } from './bmap-format.js';
import { type TargetResult, writeImageToMany } from './burn.js';
import { type BurnIo, type BurnOptions, confirm, prepareSource, refusalError } from './burn-common.js';
import { classifyTarget } from './burn-file.js';
import {
  assessTarget,
  findDevice,
  type LsblkNode,
  type parseForce,
  type readSystemState,
  remainingRefusals,
} from './devices.js';

/** The per-drive table of a burn to several drives (pure). */
export function formatManyResults(rows: readonly ManyRow[]): string {
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

type ManyRow = { device: string; size: number; model: string; serial: string; result: TargetResult };

/** Every named drive, checked as one drive would be (size aside: the image is not prepared yet). */
async function checkDrives(
  devices: readonly string[],
  state: Awaited<ReturnType<typeof readSystemState>>,
  forced: ReturnType<typeof parseForce>,
): Promise<LsblkNode[]> {
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
  return disks;
}

/** The per-drive results as --json prints them (pure). */
function manyResultsJson(rows: readonly ManyRow[]): string {
  return `${JSON.stringify(
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
  )}\n`;
}

/**
 * osbake burn IMAGE DEV1 DEV2 ...: every drive passes the same checks first (any refusal stops
 * the burn before anything is written), the image is prepared and read once, written to all,
 * each read back; a drive that fails does not stop the others; a table (or --json) at the end
 * and exit 1 when any drive failed.
 */
export async function burnMany(
  o: BurnOptions,
  devices: readonly string[],
  state: Awaited<ReturnType<typeof readSystemState>>,
  io: BurnIo,
): Promise<void> {
  const { log, say, out, forced } = io;
  const disks = await checkDrives(devices, state, forced);
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
    const rows: ManyRow[] = disks.map((d, i) => ({
      device: d.path,
      size: d.size,
      model: d.model ?? '',
      serial: d.serial ?? '',
      result: results[i] as TargetResult,
    }));
    out.write(o.json ? manyResultsJson(rows) : formatManyResults(rows));
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
