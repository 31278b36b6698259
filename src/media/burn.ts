/**
 * Write a raw image (or a zstd-compressed one) to a block device using its block map: the device
 * is opened exclusively (O_EXCL: EBUSY while mounted or held), only mapped ranges are copied with
 * large positional writes, holes are zeroed where the device can do it without writing them, then
 * fsync, and every mapped range is read back from the device (its page cache dropped first with
 * BLKFLSBUF) and compared with the bmap's SHA-256.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { InterruptedError, ProcessError, UserError } from '../errors.js';
import { run, runStreaming } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import type { ByteSink } from './bmap.js';
import { type Bmap, type Extent, holeExtents, mappedBytes, rangeBytes } from './bmap-format.js';

export const CHUNK = 8 * 1024 * 1024;

/** auto: zero holes when the device can do it without writing (discard/write-zeroes offload). */
export type HoleMode = 'auto' | 'zero' | 'keep';

export interface WriteImageOptions {
  device: string;
  image: string;
  compressed: boolean;
  bmap: Bmap;
  verify: boolean;
  holes: HoleMode;
  log: Logger;
  progress: ByteSink;
  say: (line: string) => void;
  signal?: AbortSignal;
  /** fdatasync after this many bytes, so progress shows what reached the drive (0: only at the end). */
  syncEveryBytes?: number;
  /** Size of the device in bytes (hole zeroing stops there). */
  deviceSize?: number;
  /** Test hook: runs after the write and fsync, before the read-back. */
  beforeVerify?: () => Promise<void>;
}

export interface WriteImageResult {
  written: number;
  writeSeconds: number;
  verifySeconds?: number;
  holes: 'zeroed by the device' | 'zeroed by writing' | 'left as they were' | 'none';
}

interface Chunk {
  range: number;
  offset: number;
  data: Buffer;
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof InterruptedError ? signal.reason : new InterruptedError('SIGINT');
  }
}

/** Mapped data of a raw image, read with positional reads, one chunk ahead of the writer. */
async function* rawChunks(image: string, bmap: Bmap): AsyncGenerator<Chunk> {
  const fh = await open(image, 'r');
  let next: Promise<IteratorResult<Chunk>> | undefined;
  try {
    const reads = (async function* () {
      for (const [i, r] of bmap.ranges.entries()) {
        const { offset, length } = rangeBytes(bmap, r);
        for (let done = 0; done < length; ) {
          const n = Math.min(CHUNK, length - done);
          const buf = Buffer.allocUnsafeSlow(n);
          const { bytesRead } = await fh.read(buf, 0, n, offset + done);
          if (bytesRead !== n) {
            throw new UserError(
              'E_BURN_IMAGE',
              `${image} is shorter than its bmap says (${bmap.imageSize} bytes)`,
              'the bmap belongs to another image: recreate it (delete it and burn again)',
            );
          }
          yield { range: i, offset: offset + done, data: buf };
          done += n;
        }
      }
    })();
    next = reads.next();
    for (;;) {
      const r: IteratorResult<Chunk> = await next;
      if (r.done) return;
      next = reads.next();
      yield r.value;
    }
  } finally {
    // The writer stopped early: let the read in flight finish before closing its file.
    await next?.catch(() => undefined);
    await fh.close();
  }
}

/** Mapped data of a zstd-compressed raw image: decompressed by the zstd CLI, holes skipped. */
async function* zstdChunks(image: string, bmap: Bmap, log: Logger): AsyncGenerator<Chunk> {
  const spans = bmap.ranges.map((r) => rangeBytes(bmap, r));
  const child = runStreaming(['zstd', '-dcq', '--', image], { log, tag: 'zstd' });
  let ok = false;
  try {
    let ri = 0;
    let pos = 0;
    let acc = Buffer.allocUnsafeSlow(CHUNK);
    let accLen = 0;
    let accOff = 0;
    for await (const c of child.stdout) {
      const chunk = c as Buffer;
      let cpos = 0;
      while (cpos < chunk.length && ri < spans.length) {
        const span = spans[ri] as Extent;
        const abs = pos + cpos;
        if (abs < span.offset) {
          cpos += Math.min(span.offset - abs, chunk.length - cpos);
          continue;
        }
        if (accLen === 0) accOff = abs;
        const n = Math.min(span.offset + span.length - abs, chunk.length - cpos, CHUNK - accLen);
        chunk.copy(acc, accLen, cpos, cpos + n);
        accLen += n;
        cpos += n;
        const rangeDone = abs + n === span.offset + span.length;
        if (accLen === CHUNK || rangeDone) {
          yield { range: ri, offset: accOff, data: acc.subarray(0, accLen) };
          acc = Buffer.allocUnsafeSlow(CHUNK);
          accLen = 0;
          if (rangeDone) ri++;
        }
      }
      pos += chunk.length;
    }
    await child.done;
    if (pos !== bmap.imageSize) {
      throw new UserError(
        'E_BURN_IMAGE',
        `${image} decompresses to ${pos} bytes, its bmap says ${bmap.imageSize}`,
        'the bmap belongs to another image: recreate it from the uncompressed image',
      );
    }
    ok = true;
  } finally {
    if (!ok) await child.stop();
  }
}

function shortWrite(device: string, pos: number, wrote: number, wanted: number, cause?: string): UserError {
  return new UserError(
    'E_BURN_SHORT_WRITE',
    `short write on ${device} at byte ${pos}: ${wrote} of ${wanted} bytes written${cause ? ` (${cause})` : ''}`,
    'the device is smaller than the image, was removed, or is failing: check it with lsblk -b and try another drive',
  );
}

/** pwrite all of data at pos, or fail with a clear short-write error. */
export async function writeFully(fh: FileHandle, device: string, data: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    let n: number;
    try {
      ({ bytesWritten: n } = await fh.write(data, done, data.length - done, pos + done));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw shortWrite(device, pos + done, done, data.length, code);
    }
    if (n === 0) throw shortWrite(device, pos + done, done, data.length, 'the device accepted no more bytes');
    done += n;
  }
}

async function openDevice(device: string): Promise<FileHandle> {
  try {
    return await open(device, constants.O_RDWR | constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY') {
      throw new UserError(
        'E_BURN_BUSY',
        `${device} is busy: mounted, or opened exclusively by another program`,
        'unmount its partitions (umount) and close programs using it, then try again',
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UserError(
        'E_BURN_PERMISSION',
        `no permission to write ${device}`,
        'run osbake burn as root (sudo)',
      );
    }
    if (code === 'EROFS')
      throw new UserError('E_BURN_READONLY', `${device} is read-only`, 'check its write-protect switch');
    throw new UserError(
      'E_BURN_OPEN',
      `cannot open ${device}: ${code ?? String(err)}`,
      'check the device path',
    );
  }
}

/** Zero the holes: one offloaded punch (no data written) or, for `zero`, zeros written into each hole. */
async function handleHoles(fh: FileHandle, o: WriteImageOptions): Promise<WriteImageResult['holes']> {
  const holes = holeExtents(o.bmap);
  if (holes.length === 0) return 'none';
  if (o.holes === 'keep') return 'left as they were';
  const end = Math.min(Math.ceil(o.bmap.imageSize / 512) * 512, o.deviceSize ?? Number.POSITIVE_INFINITY);
  try {
    // FALLOC_FL_PUNCH_HOLE on a block device = zeroing with BLKDEV_ZERO_NOFALLBACK: it fails instead
    // of writing zeros when the device cannot zero (or discard-and-zero) by itself.
    await run(['fallocate', '--punch-hole', '--offset', '0', '--length', String(end), o.device], {
      log: o.log,
      tag: 'fallocate',
    });
    return 'zeroed by the device';
  } catch (err) {
    if (!(err instanceof ProcessError)) throw err;
    if (o.holes === 'auto') {
      o.say(
        `note: ${o.device} cannot zero ranges by itself; holes keep their old contents (as with bmaptool)`,
      );
      return 'left as they were';
    }
  }
  const total = holes.reduce((n, h) => n + h.length, 0);
  const zeros = Buffer.alloc(CHUNK);
  o.progress.start(`zeroing holes on ${o.device}`, total);
  try {
    for (const h of holes) {
      for (let done = 0; done < h.length; ) {
        checkAbort(o.signal);
        const n = Math.min(CHUNK, h.length - done);
        await writeFully(fh, o.device, zeros.subarray(0, n), h.offset + done);
        done += n;
        o.progress.add(n);
      }
    }
  } finally {
    o.progress.end();
  }
  return 'zeroed by writing';
}

async function syncDevice(fh: FileHandle, device: string, datasync = false): Promise<void> {
  try {
    await (datasync ? fh.datasync() : fh.sync());
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UserError(
      'E_BURN_IO',
      `writing to ${device} failed (${code} on fsync)`,
      'the drive may be failing: try another one',
    );
  }
}

/** Read every mapped range back from the device and compare it with the bmap (or the written data). */
async function verifyDevice(
  fh: FileHandle,
  o: WriteImageOptions,
  written: (string | undefined)[],
): Promise<void> {
  // BLKFLSBUF writes back and drops the device's page cache: the reads below come from the device.
  // (O_DIRECT would need aligned buffers, which Node cannot promise; fadvise is not in Node.)
  await run(['blockdev', '--flushbufs', o.device], { log: o.log, tag: 'blockdev' });
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  o.progress.start(`verifying ${o.device}`, mappedBytes(o.bmap));
  try {
    for (const [i, r] of o.bmap.ranges.entries()) {
      const { offset, length } = rangeBytes(o.bmap, r);
      const h = createHash('sha256');
      for (let done = 0; done < length; ) {
        checkAbort(o.signal);
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, length - done), offset + done);
        if (bytesRead === 0) throw shortWrite(o.device, offset + done, done, length, 'read back ended early');
        h.update(buf.subarray(0, bytesRead));
        done += bytesRead;
        o.progress.add(bytesRead);
      }
      const got = h.digest('hex');
      const want = r.sha256 ?? written[i];
      if (got !== want) {
        throw new UserError(
          'E_BURN_VERIFY',
          `verification failed: blocks ${r.first}-${r.last} (bytes ${offset}..${offset + length - 1}) of ${o.device} read back with sha256 ${got}, expected ${want}`,
          'the drive did not keep what was written: it may be failing or fake-capacity; try another drive',
        );
      }
    }
  } finally {
    o.progress.end();
  }
}

/** Write the image's mapped ranges to the device, sync, and read them back. */
export async function writeImage(o: WriteImageOptions): Promise<WriteImageResult> {
  const fh = await openDevice(o.device);
  try {
    const holes = await handleHoles(fh, o);
    const total = mappedBytes(o.bmap);
    const hashes: (string | undefined)[] = [];
    let hash = createHash('sha256');
    let hashRange = 0;
    let rangeLeft = o.bmap.ranges[0] ? rangeBytes(o.bmap, o.bmap.ranges[0]).length : 0;
    const syncEvery = o.syncEveryBytes ?? 0;
    let sinceSync = 0;
    const t0 = performance.now();
    o.progress.start(`writing ${o.device}`, total);
    try {
      const chunks = o.compressed ? zstdChunks(o.image, o.bmap, o.log) : rawChunks(o.image, o.bmap);
      for await (const c of chunks) {
        checkAbort(o.signal);
        // Hash on this thread while the write's copy runs in libuv's pool.
        const writing = writeFully(fh, o.device, c.data, c.offset);
        try {
          hash.update(c.data);
        } finally {
          await writing;
        }
        rangeLeft -= c.data.length;
        if (rangeLeft === 0) {
          const got = hash.digest('hex');
          const want = o.bmap.ranges[hashRange]?.sha256;
          if (want !== undefined && got !== want) {
            const r = o.bmap.ranges[hashRange];
            throw new UserError(
              'E_BURN_IMAGE',
              `${o.image} does not match its bmap: blocks ${r?.first}-${r?.last} have sha256 ${got}, the bmap says ${want} (${o.device} now holds a partial image)`,
              'the image or its bmap is damaged or they do not belong together: recreate the bmap or fetch the image again',
            );
          }
          hashes.push(got);
          hashRange++;
          hash = createHash('sha256');
          const next = o.bmap.ranges[hashRange];
          rangeLeft = next ? rangeBytes(o.bmap, next).length : 0;
        }
        o.progress.add(c.data.length);
        sinceSync += c.data.length;
        if (syncEvery > 0 && sinceSync >= syncEvery) {
          await syncDevice(fh, o.device, true);
          sinceSync = 0;
        }
      }
      await syncDevice(fh, o.device);
    } finally {
      o.progress.end();
    }
    const writeSeconds = (performance.now() - t0) / 1000;
    const result: WriteImageResult = { written: total, writeSeconds, holes };
    if (o.verify) {
      await o.beforeVerify?.();
      const t1 = performance.now();
      await verifyDevice(fh, o, hashes);
      result.verifySeconds = (performance.now() - t1) / 1000;
    }
    return result;
  } finally {
    await fh.close();
  }
}
