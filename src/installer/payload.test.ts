import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRangesFile, packRanges, writeRanges } from './payload.js';

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
