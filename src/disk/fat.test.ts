import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import { FAT16_CLUSTERS, FAT32_CLUSTERS, fatGeometry, makeFat, mkfsFatArgv } from './fat.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

describe('fatGeometry (pure)', () => {
  it.each([
    [4 * MIB, 16, 1],
    [16 * MIB, 16, 1],
    [32 * MIB, 16, 1],
    [48 * MIB, 16, 2],
    [64 * MIB - 512, 16, 2],
    [64 * MIB, 32, 1],
    [126 * MIB, 32, 1],
    [1 * GIB, 32, 1],
    [2 * GIB, 32, 1],
    [4 * GIB, 32, 2],
    [64 * GIB, 32, 32],
  ])(
    '%i bytes → FAT%i, %i sector(s) per cluster, cluster count inside the type’s range',
    (bytes, bits, spc) => {
      const g = fatGeometry(bytes);
      expect([g.bits, g.sectorsPerCluster]).toEqual([bits, spc]);
      const range = g.bits === 16 ? FAT16_CLUSTERS : FAT32_CLUSTERS;
      expect(g.approxClusters).toBeGreaterThanOrEqual(range.min);
      expect(g.approxClusters).toBeLessThanOrEqual(range.max);
    },
  );
  it('every size from 4 MiB to 1 GiB in 1 MiB steps has a valid cluster count', () => {
    for (let b = 4 * MIB; b <= GIB; b += MIB) {
      const g = fatGeometry(b);
      const range = g.bits === 16 ? FAT16_CLUSTERS : FAT32_CLUSTERS;
      expect(g.approxClusters, `${b}`).toBeGreaterThanOrEqual(range.min);
      expect(g.approxClusters, `${b}`).toBeLessThanOrEqual(range.max);
    }
  });
  it('refuses sizes it cannot make and values that are not sector-aligned', () => {
    expect(() => fatGeometry(2 * MIB)).toThrow(/outside/);
    expect(() => fatGeometry(16 * MIB + 1)).toThrow(/512-byte/);
    expect(() =>
      mkfsFatArgv({ image: 'x', offset: 1000, size: 16 * MIB, label: 'E', volumeId: '01234567' }),
    ).toThrow(/aligned/);
    expect(() =>
      mkfsFatArgv({ image: 'x', offset: MIB, size: 16 * MIB, label: 'bad label', volumeId: '01234567' }),
    ).toThrow(/label/);
    expect(() =>
      mkfsFatArgv({ image: 'x', offset: MIB, size: 16 * MIB, label: 'E', volumeId: 'xyz' }),
    ).toThrow(/id/);
  });
  it('gives mkfs.fat every geometry value (nothing derived from the file it writes into)', () => {
    expect(
      mkfsFatArgv({ image: 'd.raw', offset: MIB, size: 16 * MIB, label: 'OSBAKE-EFI', volumeId: '05BA4E01' }),
    ).toEqual([
      'mkfs.vfat',
      '-F',
      '16',
      '-S',
      '512',
      '-s',
      '1',
      '-n',
      'OSBAKE-EFI',
      '--invariant',
      '--offset=2048',
      'd.raw',
      '16384',
    ]);
  });
});

describe('makeFat on sparse files (real mkfs.fat + mtools)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osbake-fat-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const log = createNullLogger();
  // The stick's ESP (16 MiB at 1 MiB) and the vanilla disk's (126 MiB at 2 MiB), in files of
  // every size osbake makes: small sticks, the real stick (~546 MiB), 4 and 16 GiB images, 64 GiB.
  const cases: [number, number, number][] = [];
  for (const file of [64 * MIB, 546 * MIB, 600 * MIB, 4 * GIB, 16 * GIB, 64 * GIB]) {
    for (const [offset, size] of [
      [MIB, 16 * MIB],
      [2 * MIB, 126 * MIB],
    ] as const) {
      if (offset + size <= file) cases.push([file, offset, size]);
    }
  }
  it.each(cases)(
    'file %i bytes, FAT at %i of %i bytes: made, readable and writable by mtools',
    async (file, offset, size) => {
      const img = join(dir, `f-${file}-${size}.img`);
      writeFileSync(img, '');
      truncateSync(img, file);
      await makeFat({
        image: img,
        offset,
        size,
        label: 'EFI',
        volumeId: 'ABCD0123',
        epoch: 1_700_000_000,
        log,
      });
      const info = execFileSync('minfo', ['-i', `${img}@@${offset}`, '::'], { encoding: 'utf8' });
      expect(info).toContain(`disk type="FAT${fatGeometry(size).bits}`);
      expect(info).toContain('serial number: ABCD0123');
      const src = join(dir, 'payload');
      writeFileSync(src, 'x'.repeat(100_000));
      execFileSync('mmd', ['-i', `${img}@@${offset}`, '::/EFI']);
      execFileSync('mcopy', ['-i', `${img}@@${offset}`, src, '::/EFI/f']);
      expect(
        execFileSync('mtype', ['-i', `${img}@@${offset}`, '::/EFI/f'], { encoding: 'utf8' }),
      ).toHaveLength(100_000);
      rmSync(img);
    },
  );
  it('the same inputs give the same bytes', async () => {
    const imgs = ['a.img', 'b.img'].map((n) => join(dir, n));
    for (const img of imgs) {
      writeFileSync(img, '');
      truncateSync(img, 64 * MIB);
      await makeFat({
        image: img,
        offset: MIB,
        size: 16 * MIB,
        label: 'EFI',
        volumeId: '01234567',
        epoch: 1_700_000_000,
        log,
      });
    }
    expect(execFileSync('cmp', imgs).length).toBe(0);
  });
  it('refuses a FAT that would end past the image (a layout bug must not grow the file)', async () => {
    const img = join(dir, 'small.img');
    writeFileSync(img, '');
    truncateSync(img, 8 * MIB);
    await expect(
      makeFat({ image: img, offset: MIB, size: 16 * MIB, label: 'EFI', volumeId: '01234567', log }),
    ).rejects.toThrow(/past the end/);
  });
});
