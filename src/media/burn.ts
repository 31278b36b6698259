/**
 * Write a raw image (or a zstd-compressed one) to a block device using its block map: the device
 * is opened exclusively (O_EXCL: EBUSY while mounted or held), only mapped ranges are copied with
 * large positional O_DIRECT writes (buffered where the device refuses O_DIRECT), holes are zeroed
 * where the device can do it without writing them, then fsync, and every mapped range is read back
 * from the device (O_DIRECT, else after BLKFLSBUF) and compared with the bmap's SHA-256.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InterruptedError, ProcessError, UserError } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import type { ByteSink } from './bmap.js';
import { type Bmap, type BmapRange, holeExtents, mappedBytes, rangeBytes, zeroSpans } from './bmap-format.js';
import {
  alignedBuffers,
  CHUNK,
  DIRECT_ALIGN,
  mappedChunks,
  rawChunks,
  roundUp,
  zstdChunks,
} from './burn-chunks.js';

/**
 * Buffered writes (a device without O_DIRECT) fdatasync this often: progress and ETA then follow
 * what reached the drive (a USB stick is far slower than the page cache) and the final fsync does
 * not sit at 100% for minutes. bmaptool does the same every 6 MiB.
 */
export const SYNC_EVERY_BYTES = 32 * 1024 * 1024;

/** At most this many `fallocate --zero-range` processes per burn (one per span of holes). */
const MAX_ZERO_SPANS = 64;

/** `sh -c SCRIPT name DEVICE OFFSET LENGTH [OFFSET LENGTH]...`: zero each span, stop at a failure. */
const ZERO_SPANS_SCRIPT =
  'dev=$1; shift; while [ $# -ge 2 ]; do fallocate --zero-range --offset "$1" --length "$2" "$dev" || exit; shift 2; done';

/** auto: zero holes when the device can do it without writing them (write-zeroes offload). */
export type HoleMode = 'auto' | 'zero' | 'keep';

export interface WriteImageOptions {
  device: string;
  /**
   * A regular file instead of a block device (as bmaptool copy to a file): `device` is then a new
   * file, created here exclusively and sized to the image; its holes stay holes (nothing to zero).
   */
  file?: boolean;
  image: string;
  compressed: boolean;
  bmap: Bmap;
  verify: boolean;
  holes: HoleMode;
  log: Logger;
  progress: ByteSink;
  say: (line: string) => void;
  signal?: AbortSignal;
  /** fdatasync after this many bytes (default SYNC_EVERY_BYTES; 0: only at the end). */
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
  holes:
    | 'zeroed by the device'
    | 'zeroed by writing'
    | 'left as they were'
    | 'left as holes (a new sparse file)'
    | 'none';
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof InterruptedError ? signal.reason : new InterruptedError('SIGINT');
  }
}

/** A write or read-back that stopped early; `reason`: the system error code (EIO, EINVAL...) or what happened. */
class ShortWriteError extends UserError {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(
      'E_BURN_SHORT_WRITE',
      message,
      'the device is smaller than the image, was removed, or is failing: check it with lsblk -b and try another drive',
    );
  }
}

function shortWrite(device: string, pos: number, wrote: number, wanted: number, cause?: string): UserError {
  return new ShortWriteError(
    `short write on ${device} at byte ${pos}: ${wrote} of ${wanted} bytes written${cause ? ` (${cause})` : ''}`,
    cause,
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

async function openDevice(device: string, file = false): Promise<FileHandle> {
  try {
    if (file) return await open(device, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
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
async function handleHoles(writer: DeviceWriter, o: WriteImageOptions): Promise<WriteImageResult['holes']> {
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

function imageMismatch(
  o: WriteImageOptions,
  r: BmapRange | undefined,
  got: string,
  want: string,
  note: string,
) {
  return new UserError(
    'E_BURN_IMAGE',
    `${o.image} does not match its bmap: blocks ${r?.first}-${r?.last} have sha256 ${got}, the bmap says ${want} (${note})`,
    'the image or its bmap is damaged or they do not belong together: recreate the bmap or fetch the image again',
  );
}

/** SHA-256 of one range of the (raw) image file. */
async function hashImageRange(o: WriteImageOptions, r: BmapRange): Promise<string> {
  const h = createHash('sha256');
  for await (const c of rawChunks(o.image, { ...o.bmap, ranges: [r] })) h.update(c.data);
  return h.digest('hex');
}

/**
 * A second descriptor of the device with O_DIRECT (the first holds O_EXCL), for the writes and the
 * read-back, or undefined where the device or its driver refuses direct I/O (EINVAL).
 */
async function openDirect(device: string): Promise<FileHandle | undefined> {
  try {
    return await open(device, constants.O_RDWR | constants.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
}

/**
 * Where the data goes. O_DIRECT when the device takes it: no page cache between osbake and the
 * drive, so the progress is what the drive accepted and the data is not copied once more (on a
 * loop device: twice, through the device's and the backing file's caches). A write that is not a
 * whole number of blocks (the image's last bytes) goes through the buffered descriptor. Without
 * O_DIRECT, buffered writes with an fdatasync every SYNC_EVERY_BYTES.
 */
class DeviceWriter {
  private sinceSync = 0;

  private constructor(
    private readonly fh: FileHandle,
    private direct: FileHandle | undefined,
    private readonly o: WriteImageOptions,
  ) {}

  static async open(fh: FileHandle, o: WriteImageOptions): Promise<DeviceWriter> {
    const direct = o.bmap.blockSize % DIRECT_ALIGN === 0 ? await openDirect(o.device) : undefined;
    o.log.info({ direct: direct !== undefined }, 'write mode');
    return new DeviceWriter(fh, direct, o);
  }

  /** The O_DIRECT descriptor, while direct I/O works on this device (the read-back uses it too). */
  get directHandle(): FileHandle | undefined {
    return this.direct;
  }

  async write(data: Buffer, pos: number): Promise<void> {
    let head = 0;
    if (this.direct && pos % DIRECT_ALIGN === 0) {
      head = data.length - (data.length % DIRECT_ALIGN);
      try {
        if (head > 0) await writeFully(this.direct, this.o.device, data.subarray(0, head), pos);
      } catch (err) {
        // The device opened with O_DIRECT but refuses the write itself: buffered from here on.
        if (!(err instanceof ShortWriteError && err.reason === 'EINVAL')) throw err;
        this.o.log.warn({ pos }, 'O_DIRECT write refused (EINVAL): buffered writes from here on');
        await this.closeDirect();
        head = 0;
      }
    }
    if (head === data.length) return;
    await writeFully(this.fh, this.o.device, data.subarray(head), pos + head);
    this.sinceSync += data.length - head;
    const every = this.o.syncEveryBytes ?? SYNC_EVERY_BYTES;
    if (every > 0 && this.sinceSync >= every) {
      await syncDevice(this.fh, this.o.device, true);
      this.sinceSync = 0;
    }
  }

  /** fsync on the block device: its page cache, then a cache flush of the drive (all descriptors). */
  async sync(): Promise<void> {
    await syncDevice(this.fh, this.o.device);
  }

  async closeDirect(): Promise<void> {
    const d = this.direct;
    this.direct = undefined;
    await d?.close();
  }
}

/** Read every mapped range back from the device and compare it with the bmap (or the written data). */
async function verifyDevice(
  fh: FileHandle,
  directHandle: FileHandle | undefined,
  o: WriteImageOptions,
  written: (string | undefined)[],
): Promise<void> {
  // The reads must come from the device, not from the page cache: O_DIRECT where the writer could
  // use it (whole blocks only: the image's last range is read up to its block's end, which must lie
  // on the device), else BLKFLSBUF (write back and drop the device's page cache) and buffered reads.
  const blocksEnd = roundUp(o.bmap.imageSize, DIRECT_ALIGN);
  const direct = blocksEnd <= (o.deviceSize ?? o.bmap.imageSize) ? directHandle : undefined;
  o.log.info({ direct: direct !== undefined }, 'read-back');
  // A regular file has no device cache to drop: after the fsync its reads come from the file.
  if (!direct && !o.file) await run(['blockdev', '--flushbufs', o.device], { log: o.log, tag: 'blockdev' });
  o.progress.start(`verifying ${o.device}`, mappedBytes(o.bmap));
  try {
    // One read ahead (mappedChunks): the next read runs in libuv's pool while this thread hashes.
    const chunks = mappedChunks(
      direct ?? fh,
      o.bmap,
      (offset, done, length) => shortWrite(o.device, offset + done, done, length, 'read back ended early'),
      { direct: direct !== undefined },
    );
    let h = createHash('sha256');
    for await (const c of chunks) {
      checkAbort(o.signal);
      h.update(c.data);
      o.progress.add(c.data.length);
      const r = o.bmap.ranges[c.range] as BmapRange;
      const { offset, length } = rangeBytes(o.bmap, r);
      if (c.offset + c.data.length < offset + length) continue;
      const i = c.range;
      const got = h.digest('hex');
      const want = r.sha256 ?? written[i];
      if (got !== want) {
        // The image was not hashed while writing: tell a bad image/bmap from a bad drive.
        if (r.sha256 && !o.compressed && written[i] === undefined && (await hashImageRange(o, r)) === got) {
          throw imageMismatch(o, r, got, r.sha256, `${o.device} holds the image as it is`);
        }
        throw new UserError(
          'E_BURN_VERIFY',
          `verification failed: blocks ${r.first}-${r.last} (bytes ${offset}..${offset + length - 1}) of ${o.device} read back with sha256 ${got}, expected ${want}`,
          'the drive did not keep what was written: it may be failing or fake-capacity; try another drive',
        );
      }
      h = createHash('sha256');
    }
  } finally {
    o.progress.end();
  }
}

/** One drive (or file) of a burn to several at once. */
export interface BurnTarget {
  device: string;
  deviceSize?: number;
  file?: boolean;
}

/** What happened on one target: written and verified, or why not. */
export interface TargetResult extends Partial<WriteImageResult> {
  device: string;
  ok: boolean;
  /** The error that stopped this target (the others went on). */
  error?: unknown;
}

interface LiveTarget {
  t: BurnTarget;
  o: WriteImageOptions;
  fh?: FileHandle;
  writer?: DeviceWriter;
  holes?: WriteImageResult['holes'];
  error?: unknown;
  writeSeconds?: number;
  verifySeconds?: number;
}

/**
 * Write the image's mapped ranges to several targets at once: the source is read once, each chunk
 * is written to every target still going; a target that fails (open, holes, a write, the sync or
 * the read-back) is dropped with its error and the others go on. Then each is read back.
 */
export async function writeImageToMany(
  o: Omit<WriteImageOptions, 'device' | 'deviceSize' | 'file'> & {
    targets: readonly BurnTarget[];
    /** A target failed (reported as it happens). */
    onFailed?: (device: string, err: unknown) => void;
  },
): Promise<TargetResult[]> {
  const targets: LiveTarget[] = o.targets.map((t) => ({
    t,
    o: {
      ...o,
      device: t.device,
      ...(t.deviceSize !== undefined ? { deviceSize: t.deviceSize } : {}),
      ...(t.file ? { file: true } : {}),
    },
  }));
  const fail = (x: LiveTarget, err: unknown) => {
    if (x.error !== undefined) return;
    x.error = err;
    o.log.error({ device: x.t.device, err: String(err) }, 'target failed');
    o.onFailed?.(x.t.device, err);
  };
  const live = () => targets.filter((x) => x.error === undefined);
  try {
    for (const x of targets) {
      try {
        x.fh = await openDevice(x.t.device, x.t.file);
        if (x.t.file) await x.fh.truncate(o.bmap.imageSize);
        x.writer = await DeviceWriter.open(x.fh, x.o);
        const th = performance.now();
        x.holes = await handleHoles(x.writer, x.o);
        o.log.info(
          { device: x.t.device, holes: x.holes, ms: Math.round(performance.now() - th) },
          'holes handled',
        );
      } catch (err) {
        if (err instanceof InterruptedError) throw err;
        fail(x, err);
      }
    }
    const total = mappedBytes(o.bmap);
    const hashes: (string | undefined)[] = [];
    // The read-back compares the device with the bmap's checksums, which also catches an image
    // that does not match its bmap; so the data is hashed while writing only when there is no
    // read-back, no checksum to compare with, or no cheap way to re-read the image (zstd).
    const hashWhileWriting = !o.verify || o.compressed || o.bmap.ranges.some((r) => !r.sha256);
    let hash = createHash('sha256');
    let hashRange = 0;
    let rangeLeft = o.bmap.ranges[0] ? rangeBytes(o.bmap, o.bmap.ranges[0]).length : 0;
    const t0 = performance.now();
    const names = () =>
      live()
        .map((x) => x.t.device)
        .join(', ');
    if (live().length > 0) {
      o.progress.start(
        targets.length === 1 ? `writing ${o.targets[0]?.device}` : `writing ${names()}`,
        total,
      );
      try {
        const chunks = o.compressed ? zstdChunks(o.image, o.bmap, o.log) : rawChunks(o.image, o.bmap);
        for await (const c of chunks) {
          checkAbort(o.signal);
          // Hash on this thread while the writes run in libuv's pool.
          const writing = Promise.all(
            live().map((x) =>
              (x.writer as DeviceWriter).write(c.data, c.offset).catch((err) => fail(x, err)),
            ),
          );
          try {
            if (hashWhileWriting) hash.update(c.data);
          } finally {
            await writing;
          }
          if (live().length === 0) break;
          rangeLeft -= c.data.length;
          if (rangeLeft === 0) {
            const got = hashWhileWriting ? hash.digest('hex') : undefined;
            const want = o.bmap.ranges[hashRange]?.sha256;
            if (got !== undefined && want !== undefined && got !== want) {
              // The source does not match its bmap: every target holds a partial image.
              throw imageMismatch(
                { ...o, device: names() },
                o.bmap.ranges[hashRange],
                got,
                want,
                `${names()} now hold${live().length === 1 ? 's' : ''} a partial image`,
              );
            }
            hashes.push(got);
            hashRange++;
            hash = createHash('sha256');
            const next = o.bmap.ranges[hashRange];
            rangeLeft = next ? rangeBytes(o.bmap, next).length : 0;
          }
          o.progress.add(c.data.length);
        }
        for (const x of live()) await (x.writer as DeviceWriter).sync().catch((err) => fail(x, err));
      } finally {
        o.progress.end();
      }
    }
    const writeSeconds = (performance.now() - t0) / 1000;
    for (const x of live()) {
      x.writeSeconds = writeSeconds;
      o.log.info(
        { device: x.t.device, bytes: total, ms: Math.round(writeSeconds * 1000) },
        'written and synced',
      );
    }
    if (o.verify && live().length > 0) {
      await o.beforeVerify?.();
      for (const x of live()) {
        const t1 = performance.now();
        try {
          await verifyDevice(x.fh as FileHandle, x.writer?.directHandle, x.o, hashes);
          x.verifySeconds = (performance.now() - t1) / 1000;
          o.log.info(
            { device: x.t.device, ranges: o.bmap.ranges.length, ms: Math.round(x.verifySeconds * 1000) },
            'verified',
          );
        } catch (err) {
          if (err instanceof InterruptedError) throw err;
          fail(x, err);
        }
      }
    }
    return targets.map((x) =>
      x.error === undefined
        ? {
            device: x.t.device,
            ok: true,
            written: total,
            writeSeconds: x.writeSeconds ?? 0,
            holes: x.holes ?? 'none',
            ...(x.verifySeconds !== undefined ? { verifySeconds: x.verifySeconds } : {}),
          }
        : { device: x.t.device, ok: false, error: x.error },
    );
  } finally {
    for (const x of targets) {
      await x.writer?.closeDirect().catch(() => undefined);
      await x.fh?.close().catch(() => undefined);
    }
  }
}

/** Write the image's mapped ranges to the device, sync, and read them back. */
export async function writeImage(o: WriteImageOptions): Promise<WriteImageResult> {
  const [r] = await writeImageToMany({
    ...o,
    targets: [
      {
        device: o.device,
        ...(o.deviceSize !== undefined ? { deviceSize: o.deviceSize } : {}),
        ...(o.file ? { file: true } : {}),
      },
    ],
  });
  if (!r?.ok) throw r?.error ?? new Error(`writing ${o.device} failed`);
  return {
    written: r.written ?? 0,
    writeSeconds: r.writeSeconds ?? 0,
    holes: r.holes ?? 'none',
    ...(r.verifySeconds !== undefined ? { verifySeconds: r.verifySeconds } : {}),
  };
}
