/**
 * Write a raw image (or a zstd-compressed one) to a block device using its block map: the device
 * is opened exclusively (O_EXCL: EBUSY while mounted or held), only mapped ranges are copied with
 * large positional O_DIRECT writes (buffered where the device refuses O_DIRECT), holes are zeroed
 * where the device can do it without writing them, then fsync, and every mapped range is read back
 * from the device (O_DIRECT, else after BLKFLSBUF) and compared with the bmap's SHA-256.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { InterruptedError } from '../errors.js';
import { mappedBytes, rangeBytes } from './bmap-format.js';
import { rawChunks, zstdChunks } from './burn-chunks.js';
import { handleHoles } from './burn-holes.js';
import {
  checkAbort,
  DeviceWriter,
  openDevice,
  type WriteImageOptions,
  type WriteImageResult,
} from './burn-io.js';
import { imageMismatch, verifyDevice } from './burn-verify.js';

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

type ManyOptions = Omit<WriteImageOptions, 'device' | 'deviceSize' | 'file'> & {
  targets: readonly BurnTarget[];
  /** A target failed (reported as it happens). */
  onFailed?: (device: string, err: unknown) => void;
};

/** The targets of one multi-target write, and the one way a target drops out. */
interface Many {
  o: ManyOptions;
  targets: LiveTarget[];
  /** Drop a target with its error (once; reported as it happens). */
  fail(x: LiveTarget, err: unknown): void;
  /** The targets still going. */
  live(): LiveTarget[];
  /** The devices still going, for messages. */
  names(): string;
}

/** Open every target and handle its holes; a target that cannot be opened drops out. */
async function openTargets(m: Many): Promise<void> {
  for (const x of m.targets) {
    try {
      x.fh = await openDevice(x.t.device, x.t.file);
      if (x.t.file) await x.fh.truncate(m.o.bmap.imageSize);
      x.writer = await DeviceWriter.open(x.fh, x.o);
      const th = performance.now();
      x.holes = await handleHoles(x.writer, x.o);
      m.o.log.info(
        { device: x.t.device, holes: x.holes, ms: Math.round(performance.now() - th) },
        'holes handled',
      );
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      m.fail(x, err);
    }
  }
}

/**
 * The source read once, each chunk written to every target still going, then synced. Returns the
 * SHA-256 of each range when it was hashed while writing (see hashWhileWriting), for the read-back.
 */
async function writeChunks(m: Many, total: number): Promise<(string | undefined)[]> {
  const { o } = m;
  const hashes: (string | undefined)[] = [];
  // The read-back compares the device with the bmap's checksums, which also catches an image
  // that does not match its bmap; so the data is hashed while writing only when there is no
  // read-back, no checksum to compare with, or no cheap way to re-read the image (zstd).
  const hashWhileWriting = !o.verify || o.compressed || o.bmap.ranges.some((r) => !r.sha256);
  let hash = createHash('sha256');
  let hashRange = 0;
  let rangeLeft = o.bmap.ranges[0] ? rangeBytes(o.bmap, o.bmap.ranges[0]).length : 0;
  o.progress.start(
    m.targets.length === 1 ? `writing ${o.targets[0]?.device}` : `writing ${m.names()}`,
    total,
  );
  try {
    const chunks = o.compressed ? zstdChunks(o.image, o.bmap, o.log) : rawChunks(o.image, o.bmap);
    for await (const c of chunks) {
      checkAbort(o.signal);
      // Hash on this thread while the writes run in libuv's pool.
      const writing = Promise.all(
        m
          .live()
          .map((x) => (x.writer as DeviceWriter).write(c.data, c.offset).catch((err) => m.fail(x, err))),
      );
      try {
        if (hashWhileWriting) hash.update(c.data);
      } finally {
        await writing;
      }
      if (m.live().length === 0) break;
      rangeLeft -= c.data.length;
      if (rangeLeft === 0) {
        const got = hashWhileWriting ? hash.digest('hex') : undefined;
        const want = o.bmap.ranges[hashRange]?.sha256;
        if (got !== undefined && want !== undefined && got !== want) {
          // The source does not match its bmap: every target holds a partial image.
          throw imageMismatch(
            { ...o, device: m.names() },
            o.bmap.ranges[hashRange],
            got,
            want,
            `${m.names()} now hold${m.live().length === 1 ? 's' : ''} a partial image`,
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
    for (const x of m.live()) await (x.writer as DeviceWriter).sync().catch((err) => m.fail(x, err));
  } finally {
    o.progress.end();
  }
  return hashes;
}

/** Each target still going read back against the bmap (or the hashes taken while writing). */
async function verifyTargets(m: Many, hashes: (string | undefined)[]): Promise<void> {
  await m.o.beforeVerify?.();
  for (const x of m.live()) {
    const t1 = performance.now();
    try {
      await verifyDevice(x.fh as FileHandle, x.writer?.directHandle, x.o, hashes);
      x.verifySeconds = (performance.now() - t1) / 1000;
      m.o.log.info(
        { device: x.t.device, ranges: m.o.bmap.ranges.length, ms: Math.round(x.verifySeconds * 1000) },
        'verified',
      );
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      m.fail(x, err);
    }
  }
}

/**
 * Write the image's mapped ranges to several targets at once: the source is read once, each chunk
 * is written to every target still going; a target that fails (open, holes, a write, the sync or
 * the read-back) is dropped with its error and the others go on. Then each is read back.
 */
export async function writeImageToMany(o: ManyOptions): Promise<TargetResult[]> {
  const targets: LiveTarget[] = o.targets.map((t) => ({
    t,
    o: {
      ...o,
      device: t.device,
      ...(t.deviceSize !== undefined ? { deviceSize: t.deviceSize } : {}),
      ...(t.file ? { file: true } : {}),
    },
  }));
  const live = () => targets.filter((x) => x.error === undefined);
  const m: Many = {
    o,
    targets,
    live,
    names: () =>
      live()
        .map((x) => x.t.device)
        .join(', '),
    fail(x, err) {
      if (x.error !== undefined) return;
      x.error = err;
      o.log.error({ device: x.t.device, err: String(err) }, 'target failed');
      o.onFailed?.(x.t.device, err);
    },
  };
  try {
    await openTargets(m);
    const total = mappedBytes(o.bmap);
    const t0 = performance.now();
    const hashes = live().length > 0 ? await writeChunks(m, total) : [];
    const writeSeconds = (performance.now() - t0) / 1000;
    for (const x of live()) {
      x.writeSeconds = writeSeconds;
      o.log.info(
        { device: x.t.device, bytes: total, ms: Math.round(writeSeconds * 1000) },
        'written and synced',
      );
    }
    if (o.verify && live().length > 0) await verifyTargets(m, hashes);
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
