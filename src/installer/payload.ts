/**
 * The installer's payload: release R's base image as raw, its block map, and the mapped data only
 * (the ranges, concatenated, zstd-compressed) with a ranges list (offset, length, sha256) that the
 * installer writes with `dd seek=` and verifies by reading back. Holes are never decompressed,
 * transferred or written: an 8 GiB image with 760 MiB of data costs 760 MiB of work.
 * payload.zst is a sequence of independent zstd frames, one per piece (≤ 64 MiB of one range),
 * listed in payload.pieces with where each starts in payload.zst and its SHA-256: the stick
 * decompresses the whole stream, a network install fetches each piece with a range request,
 * checks it, and decompresses it onto the disk — compressed on the wire, resumable per piece.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.js';
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

/**
 * Most raw bytes in one piece (one zstd frame): what the installer holds in RAM at once (the piece,
 * its frame and zstd's window: ~150 MiB). Measured on debian12-base's 1,148 MiB of data at zstd -19:
 * 16 MiB pieces 291.9 MB on the wire, 64 MiB pieces with a window as long as the piece 272.3 MB
 * (−6.7 %, ~17 % more compression time); xz -9e --x86 of 16 MiB pieces would be −7.3 % at 7× the
 * decompression time. Resume and re-fetch stay per piece (~15 MB compressed).
 */
export const PIECE_BYTES = 64 * 2 ** 20;

/** zstd's window for a piece: the whole piece (2^26 = PIECE_BYTES), within zstd -d's default limit (2^27). */
export const PIECE_WINDOW_LOG = 26;

export interface Piece {
  /** Where its bytes go on the target disk. */
  offset: number;
  length: number;
  /** Where its frame is in payload.zst, and the frame's SHA-256. */
  zstOffset: number;
  zstLength: number;
  sha256: string;
}

/** The pieces of the ranges (pure): each range cut into PIECE_BYTES or less, in order. */
export function pieceRanges(ranges: readonly ByteRange[], pieceBytes = PIECE_BYTES): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of ranges) {
    for (let o = 0; o < r.length; o += pieceBytes) {
      out.push({ offset: r.offset + o, length: Math.min(pieceBytes, r.length - o) });
    }
  }
  return out;
}

/** payload.pieces (pure): "offset length zst_offset zst_length sha256" per line, after a header. */
export function formatPiecesFile(pieces: readonly Piece[]): string {
  return [
    '# osbake payload pieces: each is one zstd frame of payload.zst, decompressed to <length> bytes',
    '# at byte <offset> of the disk. offset length zst_offset zst_length sha256(frame)',
    ...pieces.map((p) => `${p.offset} ${p.length} ${p.zstOffset} ${p.zstLength} ${p.sha256}`),
    '',
  ].join('\n');
}

/**
 * zstd level of the payload: 19 makes debian12-base's 1.13 GiB of data 35 % smaller than level 3
 * (what nodes fetch and sticks hold; decompression is as fast), at ~5 s of one core per piece —
 * paid once per release, pieces compressed side by side on every core.
 */
export const PAYLOAD_ZSTD_LEVEL = 19;

/**
 * Compress `packed` (the ranges back to back) piece by piece into `out`: one zstd frame each,
 * concatenated in order (still one valid .zst stream). Returns the pieces with their frames' places.
 */
export async function compressPieces(o: {
  packed: string;
  out: string;
  ranges: readonly ByteRange[];
  work: string;
  log: Logger;
  signal: AbortSignal;
  level?: number;
  /** Pieces compressed at once (default: one per core). */
  parallel?: number;
  progress?: ByteProgress;
}): Promise<Piece[]> {
  const list = pieceRanges(o.ranges);
  const starts: number[] = [];
  list.reduce((at, p) => {
    starts.push(at);
    return at + p.length;
  }, 0);
  const frameFile = (i: number) => `${o.work}/piece-${i}.zst`;
  const src = await open(o.packed, 'r');
  try {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < list.length; i = next++) {
        const p = list[i] as ByteRange;
        const buf = Buffer.alloc(p.length);
        const { bytesRead } = await src.read(buf, 0, p.length, starts[i]);
        if (bytesRead !== p.length) throw new Error(`${o.packed}: short read at ${starts[i]}`);
        const raw = `${o.work}/piece-${i}.bin`;
        await writeFile(raw, buf);
        await run(
          [
            'zstd',
            '-q',
            '-f',
            '-T1',
            `-${o.level ?? PAYLOAD_ZSTD_LEVEL}`,
            `--long=${PIECE_WINDOW_LOG}`,
            raw,
            '-o',
            frameFile(i),
          ],
          { log: o.log, signal: o.signal },
        );
        await rm(raw, { force: true });
        o.progress?.add(p.length);
      }
    };
    const n = Math.max(1, Math.min(o.parallel ?? availableParallelism(), list.length));
    await Promise.all(Array.from({ length: n }, worker));
  } catch (err) {
    await Promise.all(list.map((_, i) => rm(frameFile(i), { force: true })));
    throw err;
  } finally {
    await src.close();
  }
  const dst = await open(o.out, 'w');
  const pieces: Piece[] = [];
  let zstAt = 0;
  try {
    for (const [i, p] of list.entries()) {
      const frame = await readFile(frameFile(i));
      await dst.write(frame);
      await rm(frameFile(i), { force: true });
      pieces.push({
        ...p,
        zstOffset: zstAt,
        zstLength: frame.length,
        sha256: createHash('sha256').update(frame).digest('hex'),
      });
      zstAt += frame.length;
    }
    await dst.sync();
  } finally {
    await dst.close();
  }
  return pieces;
}

export interface PreparedPayload {
  raw: string;
  rawSize: number;
  bmapFile: string;
  rangesFile: string;
  packedFile: string;
  piecesFile: string;
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
  /** zstd level (default PAYLOAD_ZSTD_LEVEL). */
  level?: number;
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
  const level = o.level ?? PAYLOAD_ZSTD_LEVEL;
  o.progress(
    `compressing ${Math.round(dataBytes / 2 ** 20)} MiB of data (zstd -${level} --long=${PIECE_WINDOW_LOG}, one frame per piece of ≤ ${PIECE_BYTES / 2 ** 20} MiB, ${availableParallelism()} at once)`,
  );
  const packedFile = `${o.dir}/payload.zst`;
  o.bytes?.start('compressing', dataBytes);
  const pieces = await compressPieces({
    packed,
    out: packedFile,
    ranges,
    work: o.dir,
    log,
    signal,
    level,
    ...(o.bytes ? { progress: o.bytes } : {}),
  });
  o.bytes?.end();
  const piecesFile = `${o.dir}/payload.pieces`;
  await writeFile(piecesFile, formatPiecesFile(pieces));
  await rm(packed, { force: true });
  return {
    raw,
    rawSize: bmap.imageSize,
    bmapFile,
    rangesFile,
    packedFile,
    piecesFile,
    dataBytes,
    ranges: hashed.length,
  };
}

/** payload.ranges → [{offset, length, sha256}] (pure; comment and empty lines skipped). */
export function parsePayloadRanges(text: string): { offset: number; length: number; sha256: string }[] {
  const out: { offset: number; length: number; sha256: string }[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [off, len, sum] = line.trim().split(/\s+/);
    if (!/^\d+$/.test(off ?? '') || !/^\d+$/.test(len ?? '') || !/^[0-9a-f]{64}$/.test(sum ?? '')) {
      throw new Error(`payload.ranges: bad line "${line.slice(0, 80)}"`);
    }
    out.push({ offset: Number(off), length: Number(len), sha256: sum as string });
  }
  return out;
}

/** payload.pieces → pieces (pure; comment and empty lines skipped). */
export function parsePieces(text: string): Piece[] {
  const out: Piece[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const n = f.slice(0, 4).map((x) => (/^\d{1,15}$/.test(x) ? Number(x) : Number.NaN));
    if (f.length !== 5 || n.some((x) => !Number.isSafeInteger(x)) || !/^[0-9a-f]{64}$/.test(f[4] ?? '')) {
      throw new UserError(
        'E_VERIFY',
        `payload.pieces: bad line "${line.slice(0, 80)}"`,
        'the stick image is damaged: rebuild it',
      );
    }
    const [offset, length, zstOffset, zstLength] = n as [number, number, number, number];
    out.push({ offset, length, zstOffset, zstLength, sha256: f[4] as string });
  }
  return out;
}

/**
 * The pieces cover the ranges exactly, in order, and their frames payload.zst back to back (pure):
 * a list that is not the stick's own is refused before any node sees it.
 */
export function checkPieces(
  ranges: { offset: number; length: number }[],
  pieces: { offset: number; length: number; zstOffset: number; zstLength: number }[],
  zstBytes: number,
  stick: string,
): void {
  const bad = (why: string) =>
    new UserError('E_VERIFY', `payload.pieces of ${stick} ${why}`, 'the stick image is damaged: rebuild it');
  let i = 0;
  let zst = 0;
  for (const r of ranges) {
    let at = r.offset;
    while (at < r.offset + r.length) {
      const p = pieces[i++];
      if (!p || p.offset !== at || p.length <= 0 || at + p.length > r.offset + r.length)
        throw bad(`does not cover the range at ${r.offset}`);
      if (p.zstOffset !== zst || p.zstLength <= 0) throw bad(`has a frame out of place at ${p.zstOffset}`);
      at += p.length;
      zst += p.zstLength;
    }
  }
  if (i !== pieces.length) throw bad('lists more pieces than the ranges hold');
  if (zst !== zstBytes) throw bad(`frames end at ${zst}, payload.zst at ${zstBytes}`);
}
