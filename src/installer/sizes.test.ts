/**
 * Sizes are inputs too: every size, count and offset osbake derives from the content — the stick's
 * layout (ESP, data partition), the payload's ranges and their file, the block map, the network
 * install's ranges — at the sizes users have (the real image's ~1.3 GiB, 4 GiB and 16 GiB images),
 * on sparse files where making them for real is too slow.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeFat } from '../disk/fat.js';
import { partitionExtents } from '../disk/loop.js';
import { createNullLogger } from '../log/logger.js';
import { createBmap } from '../media/bmap.js';
import { formatRangesFile, parsePayloadRanges, writeRanges } from './payload.js';
import { dataPartitionMkfsArgv } from './stick.js';
import { MIB, planStickLayout, SECTOR, sfdiskScript } from './stick-layout.js';

const GIB = 2 ** 30;
const log = createNullLogger();
const dir = mkdtempSync(join(tmpdir(), 'osbake-sizes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CONTENT = [
  ['a small test image', 200 * MIB],
  ['the real debian12-base stick content', 546 * MIB],
  ['a 4 GiB image', 4 * GIB],
  ['a 16 GiB image', 16 * GIB],
] as const;

describe('the stick layout at the sizes users have', () => {
  it.each(CONTENT)(
    '%s: sector-aligned partitions that hold the content, an MBR that can say them',
    (_w, bytes) => {
      const l = planStickLayout(bytes);
      expect(l.esp.offset % MIB).toBe(0);
      expect(l.data.offset).toBe(l.esp.offset + l.esp.size);
      expect(l.data.size).toBeGreaterThan(bytes);
      expect(l.data.size % MIB).toBe(0);
      expect(l.totalBytes).toBe(l.data.offset + l.data.size);
      // MBR fields are 32-bit sector counts.
      expect((l.data.offset + l.data.size) / SECTOR).toBeLessThan(2 ** 32);
    },
  );

  it.each(CONTENT)(
    '%s: sfdisk, the ESP (mkfs.fat + mtools) and the ext4 data partition are made on a sparse file of that size',
    async (_w, bytes) => {
      const l = planStickLayout(bytes);
      const img = join(dir, `stick-${bytes}.raw`);
      writeFileSync(img, '');
      truncateSync(img, l.totalBytes);
      execFileSync('sfdisk', ['--quiet', img], { input: sfdiskScript(l) });
      const parts = await partitionExtents(img, log);
      expect(parts.map((p) => [p.number, p.offset, p.size])).toEqual([
        [1, l.esp.offset, l.esp.size],
        [2, l.data.offset, l.data.size],
      ]);
      await makeFat({
        image: img,
        offset: l.esp.offset,
        size: l.esp.size,
        label: 'OSBAKE-EFI',
        volumeId: '05BA4E01',
        log,
      });
      expect(execFileSync('minfo', ['-i', `${img}@@${l.esp.offset}`, '::'], { encoding: 'utf8' })).toContain(
        'FAT16',
      );
      const content = join(dir, 'content');
      await mkdir(content, { recursive: true });
      writeFileSync(join(content, 'README.txt'), 'x');
      const [mkfs = 'mkfs.ext4', ...args] = dataPartitionMkfsArgv('OSBAKE-USB', l, content, img);
      execFileSync(mkfs, args);
      const blocks = execFileSync('debugfs', ['-R', 'stats', `${img}?offset=${l.data.offset}`], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(Number(/Block count:\s+(\d+)/.exec(blocks)?.[1]) * 4096).toBe(l.data.size);
      rmSync(img);
    },
    60_000,
  );
});

/** A sparse image of `size` bytes with data at the given offsets (4 KiB of a pattern each). */
function sparseWithData(name: string, size: number, offsets: number[]): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, size);
  const fd = openSync(p, 'r+');
  try {
    for (const o of offsets) writeSync(fd, Buffer.alloc(4096, o % 251), 0, 4096, o);
  } finally {
    closeSync(fd);
  }
  return p;
}

describe('block map, payload ranges and network ranges past 4 GiB', () => {
  it.each([
    ['4 GiB', 4 * GIB],
    ['16 GiB', 16 * GIB],
  ])(
    '%s image: the bmap finds data beyond 2^32, the ranges keep every byte, the ranges file reads back',
    async (_w, size) => {
      const offsets = [0, 3 * GIB + 4096, size - 8192, 5 * 2 ** 31]
        .filter((o) => o + 4096 <= size)
        .sort((a, b) => a - b);
      const img = sparseWithData(`data-${size}.raw`, size, offsets);
      const { bmap } = await createBmap(img, log);
      expect(bmap.imageSize).toBe(size);
      const mappedStarts = bmap.ranges.map((r) => r.first * bmap.blockSize);
      for (const o of offsets) expect(mappedStarts.some((s) => s <= o)).toBe(true);
      const ranges = writeRanges(bmap, MIB);
      const total = ranges.reduce((n, r) => n + r.length, 0);
      expect(total).toBe(bmap.ranges.reduce((n, r) => n + (r.last - r.first + 1) * bmap.blockSize, 0));
      for (const r of ranges) {
        expect(r.length).toBeLessThanOrEqual(256 * MIB);
        expect(r.offset + r.length).toBeLessThanOrEqual(size);
      }
      const hashed = ranges.map((r) => ({
        ...r,
        sha256: createHash('sha256').update(String(r.offset)).digest('hex'),
      }));
      const back = parsePayloadRanges(formatRangesFile(hashed, size));
      expect(back).toEqual(hashed);
      expect(Math.max(...back.map((r) => r.offset + r.length))).toBe(size - 4096);
      rmSync(img);
    },
    60_000,
  );
});
