/**
 * The installer's payload: release R's base image as raw, its block map, and the mapped data only
 * (the ranges, concatenated, zstd-compressed) with a ranges list (offset, length, sha256) that the
 * installer writes with `dd seek=` and verifies by reading back. Holes are never decompressed,
 * transferred or written: an 8 GiB image with 760 MiB of data costs 760 MiB of work.
 */
import { createHash } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import type { ByteProgress } from '../log/progress.js';
import { writeBmapFor } from '../media/bmap.js';
import { type Bmap, rangeBytes } from '../media/bmap-format.js';

export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Byte ranges to write: the bmap's block ranges, clamped to the image size, merged when the gap
 * between them is below `maxGap` bytes (writing a small hole's zeros is cheaper than another dd
 * under emulation), split so that no range exceeds `maxLength` (pure).
 */
export function writeRanges(
  bmap: Pick<Bmap, 'imageSize' | 'blockSize' | 'ranges'>,
  maxGap: number,
  maxLength = 256 * 2 ** 20,
): ByteRange[] {
  const out: ByteRange[] = [];
  const sorted = [...bmap.ranges].sort((a, b) => a.first - b.first);
  for (const r of sorted) {
    const { offset, length } = rangeBytes(bmap, r);
    const end = offset + length;
    if (length <= 0) continue;
    const prev = out.at(-1);
    if (prev && offset - (prev.offset + prev.length) <= maxGap) {
      prev.length = Math.max(prev.length, end - prev.offset);
    } else {
      out.push({ offset, length: end - offset });
    }
  }
  const split: ByteRange[] = [];
  for (const r of out) {
    for (let o = r.offset; o < r.offset + r.length; o += maxLength) {
      split.push({ offset: o, length: Math.min(maxLength, r.offset + r.length - o) });
    }
  }
  return split;
}

/** payload.ranges: "offset length sha256" per line, after a comment header (pure). */
export function formatRangesFile(
  ranges: readonly (ByteRange & { sha256: string })[],
  imageSize: number,
): string {
  const total = ranges.reduce((n, r) => n + r.length, 0);
  return [
    '# osbake payload ranges: byte offset, length and SHA-256 of each range of the raw image.',
    '# payload.zst holds these ranges concatenated in this order; everything else is zeros.',
    `# image_size=${imageSize} ranges=${ranges.length} bytes=${total}`,
    ...ranges.map((r) => `${r.offset} ${r.length} ${r.sha256}`),
    '',
  ].join('\n');
}

export interface PreparedPayload {
  raw: string;
  rawSize: number;
  bmapFile: string;
  rangesFile: string;
  packedFile: string;
  /** Bytes of data ranges (uncompressed). */
  dataBytes: number;
  ranges: number;
}

/** Copy the ranges of `raw` into `packed`, hashing each (reads positionally: no hole is read). */
export async function packRanges(
  raw: string,
  packed: string,
  ranges: readonly ByteRange[],
  progress?: ByteProgress,
): Promise<(ByteRange & { sha256: string })[]> {
  const src = await open(raw, 'r');
  const dst = await open(packed, 'w');
  const result: (ByteRange & { sha256: string })[] = [];
  const buf = Buffer.alloc(4 * 2 ** 20);
  try {
    for (const r of ranges) {
      const hash = createHash('sha256');
      let done = 0;
      while (done < r.length) {
        const want = Math.min(buf.length, r.length - done);
        const { bytesRead } = await src.read(buf, 0, want, r.offset + done);
        if (bytesRead !== want) throw new Error(`${raw}: short read at ${r.offset + done}`);
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        await dst.write(chunk);
        done += bytesRead;
        progress?.add(bytesRead);
      }
      result.push({ ...r, sha256: hash.digest('hex') });
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst.close();
  }
  return result;
}

/** qcow2 → sparse raw → block map → packed data ranges (zstd) + ranges list. */
export async function preparePayload(o: {
  image: string;
  dir: string;
  name: string;
  log: Logger;
  signal: AbortSignal;
  progress: (t: string) => void;
  bytes?: ByteProgress;
}): Promise<PreparedPayload> {
  const { log, signal } = o;
  const raw = `${o.dir}/${o.name}.raw`;
  const bmapFile = `${o.dir}/${o.name}.bmap`;
  const packed = `${o.dir}/payload.bin`;
  o.progress('converting the image to raw');
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', o.image, raw], { log, signal });
  o.progress('creating the block map');
  const { bmap } = await writeBmapFor(raw, log, undefined, bmapFile);
  const ranges = writeRanges(bmap, 1024 * 1024);
  const dataBytes = ranges.reduce((n, r) => n + r.length, 0);
  o.progress(`packing ${ranges.length} data ranges`);
  o.bytes?.start('packing data ranges', dataBytes);
  const hashed = await packRanges(raw, packed, ranges, o.bytes);
  o.bytes?.end();
  const rangesFile = `${o.dir}/payload.ranges`;
  await writeFile(rangesFile, formatRangesFile(hashed, bmap.imageSize));
  o.progress(`compressing ${Math.round(dataBytes / 2 ** 20)} MiB of data (zstd)`);
  const packedFile = `${o.dir}/payload.zst`;
  await run(['zstd', '-q', '-f', '-T0', '-3', packed, '-o', packedFile], { log, signal });
  await rm(packed, { force: true });
  return { raw, rawSize: bmap.imageSize, bmapFile, rangesFile, packedFile, dataBytes, ranges: hashed.length };
}
