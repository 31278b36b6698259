import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../exec/run.js';
import { createNullLogger } from '../log/logger.js';
import {
  checkPieces,
  compressPieces,
  formatPiecesFile,
  formatRangesFile,
  PIECE_BYTES,
  packRanges,
  parsePieces,
  pieceRanges,
  writeRanges,
} from './payload.js';

// Blocks 0, 2-3 and 9 of a 10-block image hold data.
const BMAP = {
  imageSize: 40960,
  blockSize: 4096,
  ranges: [
    { first: 0, last: 0 },
    { first: 2, last: 3 },
    { first: 9, last: 9 },
  ],
};

describe('writeRanges', () => {
  const b = BMAP;
  it('keeps ranges apart when the gap is larger than maxGap', () => {
    expect(writeRanges(b, 0)).toEqual([
      { offset: 0, length: 4096 },
      { offset: 8192, length: 8192 },
      { offset: 36864, length: 4096 },
    ]);
  });
  it('merges small gaps', () => {
    expect(writeRanges(b, 4096)).toEqual([
      { offset: 0, length: 16384 },
      { offset: 36864, length: 4096 },
    ]);
  });
  it('clamps the last block to the image size and splits long ranges', () => {
    const odd = { ...b, imageSize: 38000 };
    expect(writeRanges(odd, 0).at(-1)).toEqual({ offset: 36864, length: 1136 });
    expect(writeRanges(b, 1 << 20, 6000)).toEqual([
      { offset: 0, length: 6000 },
      { offset: 6000, length: 6000 },
      { offset: 12000, length: 6000 },
      { offset: 18000, length: 6000 },
      { offset: 24000, length: 6000 },
      { offset: 30000, length: 6000 },
      { offset: 36000, length: 4960 },
    ]);
  });
});

describe('packRanges + formatRangesFile', () => {
  it('concatenates the ranges and hashes each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-pack-'));
    try {
      const raw = Buffer.alloc(40960);
      raw.fill(1, 0, 4096);
      raw.fill(2, 8192, 16384);
      await writeFile(join(dir, 'raw'), raw);
      const ranges = writeRanges(BMAP, 0);
      const hashed = await packRanges(join(dir, 'raw'), join(dir, 'packed'), ranges);
      const packed = await readFile(join(dir, 'packed'));
      expect(packed.length).toBe(16384);
      expect(packed.subarray(0, 4096).every((x) => x === 1)).toBe(true);
      const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');
      expect(hashed[1]?.sha256).toBe(sha(raw.subarray(8192, 16384)));
      const text = formatRangesFile(hashed, 40960);
      expect(text.split('\n').filter((l) => !l.startsWith('#') && l)).toEqual(
        hashed.map((r) => `${r.offset} ${r.length} ${r.sha256}`),
      );
      expect(text).toContain('# image_size=40960 ranges=3 bytes=16384');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('payload pieces', () => {
  it('cuts each range into pieces of at most PIECE_BYTES, in order, never across ranges', () => {
    expect(
      pieceRanges(
        [
          { offset: 0, length: 10 },
          { offset: 100, length: 25 },
        ],
        10,
      ),
    ).toEqual([
      { offset: 0, length: 10 },
      { offset: 100, length: 10 },
      { offset: 110, length: 10 },
      { offset: 120, length: 5 },
    ]);
  });

  it("compresses one zstd frame per piece (real zstd): each frame alone gives its bytes, the whole stream gives them all; a list that is not the stick's is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-pieces-'));
    try {
      const ranges = [
        { offset: 0, length: 4096 },
        { offset: 2 ** 20, length: PIECE_BYTES + 5000 },
      ];
      const data = Buffer.alloc(4096 + PIECE_BYTES + 5000);
      for (let i = 0; i < data.length; i += 997) data[i] = i % 251;
      await writeFile(join(dir, 'packed.bin'), data);
      const log = createNullLogger();
      const out = join(dir, 'payload.zst');
      const pieces = await compressPieces({
        packed: join(dir, 'packed.bin'),
        out,
        ranges,
        work: dir,
        log,
        signal: new AbortController().signal,
        level: 3,
        parallel: 3,
      });
      expect(pieces.map((p) => [p.offset, p.length])).toEqual([
        [0, 4096],
        [2 ** 20, PIECE_BYTES],
        [2 ** 20 + PIECE_BYTES, 5000],
      ]);
      const zst = await readFile(out);
      let at = 0;
      for (const p of pieces) {
        const frame = zst.subarray(p.zstOffset, p.zstOffset + p.zstLength);
        expect(createHash('sha256').update(frame).digest('hex')).toBe(p.sha256);
        await writeFile(join(dir, 'frame.zst'), frame);
        await run(['zstd', '-q', '-d', '-f', join(dir, 'frame.zst'), '-o', join(dir, 'frame.bin')], { log });
        expect(
          (await readFile(join(dir, 'frame.bin'))).equals(
            data.subarray(
              p.offset === 0 ? 0 : 4096 + p.offset - 2 ** 20,
              (p.offset === 0 ? 0 : 4096 + p.offset - 2 ** 20) + p.length,
            ),
          ),
        ).toBe(true);
        expect(p.zstOffset).toBe(at);
        at += p.zstLength;
      }
      expect(at).toBe(zst.length);
      const whole = join(dir, 'whole.bin');
      await run(['zstd', '-q', '-d', '-f', out, '-o', whole], { log });
      expect((await readFile(whole)).equals(data)).toBe(true);
      const parsed = parsePieces(formatPiecesFile(pieces));
      expect(parsed).toEqual(pieces);
      expect(() => checkPieces(ranges, parsed, zst.length, 'S')).not.toThrow();
      expect(() => checkPieces(ranges, parsed.slice(1), zst.length, 'S')).toThrow(
        /does not cover the range at 0/,
      );
      expect(() => checkPieces(ranges, parsed, zst.length + 1, 'S')).toThrow(/frames end at/);
      const moved = parsed.map((p, i) => (i === 1 ? { ...p, zstOffset: p.zstOffset + 1 } : p));
      expect(() => checkPieces(ranges, moved, zst.length, 'S')).toThrow(/frame out of place/);
      expect(() => parsePieces('0 10 0 5 nothex\n')).toThrow(/bad line/);
      expect(() => parsePieces('0 10 0 5\n')).toThrow(/bad line/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
