import { readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ProcessError } from '../errors.js';
import { run } from '../exec/run.js';
import { holeExtents, zeroSpans } from './bmap-format.js';
import { alignedBuffers, CHUNK, roundUp } from './burn-chunks.js';
import { checkAbort, type DeviceWriter, type WriteImageOptions, type WriteImageResult } from './burn-io.js';

/** At most this many `fallocate --zero-range` processes per burn (one per span of holes). */
const MAX_ZERO_SPANS = 64;

/** `sh -c SCRIPT name DEVICE OFFSET LENGTH [OFFSET LENGTH]...`: zero each span, stop at a failure. */
const ZERO_SPANS_SCRIPT =
  'dev=$1; shift; while [ $# -ge 2 ]; do fallocate --zero-range --offset "$1" --length "$2" "$dev" || exit; shift 2; done';

/**
 * How many bytes the device can zero in one offloaded command (sysfs queue/write_zeroes_max_bytes,
 * the parent disk's for a partition); 0 when it cannot (USB sticks: usb-storage and uas turn
 * WRITE SAME off) or when sysfs does not say.
 */
export async function writeZeroesMaxBytes(device: string, sysfs = '/sys'): Promise<number> {
  try {
    const dir = await realpath(join(sysfs, 'class/block', basename(await realpath(device))));
    for (const q of [join(dir, 'queue'), join(dir, '..', 'queue')]) {
      const text = await readFile(join(q, 'write_zeroes_max_bytes'), 'utf8').catch(() => undefined);
      if (text !== undefined) return Number.parseInt(text, 10) || 0;
    }
  } catch {
    // not a block device sysfs knows
  }
  return 0;
}

/**
 * Zero the holes: where the device zeroes ranges by itself (write-zeroes offload), `fallocate
 * --zero-range` over the holes before the data is written (no data moves; the blocks stay
 * allocated, so a loop device's backing file is not discarded block by block); else `auto` leaves
 * them and `zero` writes zeros into each hole.
 */
export async function handleHoles(
  writer: DeviceWriter,
  o: WriteImageOptions,
): Promise<WriteImageResult['holes']> {
  const holes = holeExtents(o.bmap);
  if (holes.length === 0) return 'none';
  if (o.file) return 'left as holes (a new sparse file)';
  if (o.holes === 'keep') return 'left as they were';
  const end = Math.min(roundUp(o.bmap.imageSize, 512), o.deviceSize ?? Number.POSITIVE_INFINITY);
  const offload = await writeZeroesMaxBytes(o.device);
  o.log.info({ device: o.device, writeZeroesMaxBytes: offload }, 'write-zeroes offload');
  if (offload > 0) {
    try {
      // FALLOC_FL_ZERO_RANGE on a block device: REQ_OP_WRITE_ZEROES (NOUNMAP). The holes only (the
      // small data ranges between them included, to bound the number of processes), so the large
      // data ranges are not zeroed just before they are written.
      // One shell runs them all: a process start through run() costs ~20 ms, fallocate's own ~2.
      const spans = zeroSpans(o.bmap, end, MAX_ZERO_SPANS).flatMap((x) => [
        String(x.offset),
        String(x.length),
      ]);
      await run(['sh', '-c', ZERO_SPANS_SCRIPT, 'osbake-zero-holes', o.device, ...spans], {
        log: o.log,
        tag: 'fallocate',
        signal: o.signal,
      });
      return 'zeroed by the device';
    } catch (err) {
      if (!(err instanceof ProcessError)) throw err;
    }
  }
  if (o.holes === 'auto') {
    o.say(
      `note: ${o.device} cannot zero ranges by itself; holes keep their old contents (as with bmaptool; --holes zero writes zeros)`,
    );
    return 'left as they were';
  }
  const total = holes.reduce((n, h) => n + h.length, 0);
  // Page-aligned and zero-filled (a fresh WebAssembly.Memory), so O_DIRECT can write it.
  const [zeros] = alignedBuffers(1, CHUNK) as [Buffer];
  o.progress.start(`zeroing holes on ${o.device}`, total);
  try {
    for (const h of holes) {
      for (let done = 0; done < h.length; ) {
        checkAbort(o.signal);
        const n = Math.min(CHUNK, h.length - done);
        await writer.write(zeros.subarray(0, n), h.offset + done);
        done += n;
        o.progress.add(n);
      }
    }
  } finally {
    o.progress.end();
  }
  return 'zeroed by writing';
}
