import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import type { Bmap } from './bmap-format.js';
import { writeImage } from './burn.js';
import { writeZeroesMaxBytes } from './burn-holes.js';
import { type HoleMode, writeFully } from './burn-io.js';

/** A file handle whose writes accept at most `limit` bytes each and end at `end`. */
function fakeDevice(limit: number, end: number, fail?: NodeJS.ErrnoException) {
  const calls: [number, number][] = [];
  const fh = {
    async write(_b: Buffer, _off: number, len: number, pos: number) {
      calls.push([pos, len]);
      if (pos >= end) {
        if (fail) throw fail;
        return { bytesWritten: 0 };
      }
      return { bytesWritten: Math.min(len, limit, end - pos) };
    },
  } as unknown as FileHandle;
  return { fh, calls };
}

describe('writeFully', () => {
  it('continues after partial writes until everything is written', async () => {
    const d = fakeDevice(3000, 1 << 20);
    await writeFully(d.fh, '/dev/x', Buffer.alloc(8192), 4096);
    expect(d.calls).toEqual([
      [4096, 8192],
      [7096, 5192],
      [10096, 2192],
    ]);
  });

  it('fails clearly when the device accepts no more bytes', async () => {
    const d = fakeDevice(1 << 20, 10_000);
    await expect(writeFully(d.fh, '/dev/x', Buffer.alloc(8192), 4096)).rejects.toMatchObject({
      code: 'E_BURN_SHORT_WRITE',
      message:
        'short write on /dev/x at byte 10000: 5904 of 8192 bytes written (the device accepted no more bytes)',
    });
  });

  it('names the errno of a failed write (ENOSPC past the end of a block device)', async () => {
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const d = fakeDevice(1 << 20, 4096, enospc);
    await expect(writeFully(d.fh, '/dev/x', Buffer.alloc(100), 4096)).rejects.toMatchObject({
      message: 'short write on /dev/x at byte 4096: 0 of 100 bytes written (ENOSPC)',
    });
  });
});

describe('writeZeroesMaxBytes (sysfs layout as the kernel has it)', () => {
  // sys/class/block/<name> links into sys/devices/...; a partition's queue is its disk's.
  const root = mkdtempSync(join(tmpdir(), 'osbake-sysfs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const sys = join(root, 'sys');
  const disk = (name: string, wz: string | undefined, parts: string[] = []) => {
    const d = join(sys, 'devices/pci0000:00/usb1/host0/block', name);
    mkdirSync(join(d, 'queue'), { recursive: true });
    if (wz !== undefined) writeFileSync(join(d, 'queue/write_zeroes_max_bytes'), `${wz}\n`);
    mkdirSync(join(sys, 'class/block'), { recursive: true });
    symlinkSync(d, join(sys, 'class/block', name));
    for (const p of parts) {
      mkdirSync(join(d, p));
      symlinkSync(join(d, p), join(sys, 'class/block', p));
    }
  };
  const dev = (name: string) => {
    mkdirSync(join(root, 'dev'), { recursive: true });
    writeFileSync(join(root, 'dev', name), '');
    return join(root, 'dev', name);
  };
  disk('nvme0n1', '2199023255040', ['nvme0n1p1']);
  disk('sdb', '0', ['sdb1']);
  disk('sdc', undefined);

  it('reads the disk queue, and the parent disk queue for a partition', async () => {
    expect(await writeZeroesMaxBytes(dev('nvme0n1'), sys)).toBe(2199023255040);
    expect(await writeZeroesMaxBytes(dev('nvme0n1p1'), sys)).toBe(2199023255040);
  });

  it('0 for a USB stick (WRITE SAME off), a queue without the file, an unknown device', async () => {
    expect(await writeZeroesMaxBytes(dev('sdb1'), sys)).toBe(0);
    expect(await writeZeroesMaxBytes(dev('sdc'), sys)).toBe(0);
    expect(await writeZeroesMaxBytes(dev('sdz'), sys)).toBe(0);
    expect(await writeZeroesMaxBytes(join(root, 'no-such-device'), sys)).toBe(0);
  });

  it('follows /dev symlinks to the kernel name', async () => {
    symlinkSync(dev('sdb'), join(root, 'dev', 'by-id-usb-stick'));
    expect(await writeZeroesMaxBytes(join(root, 'dev', 'by-id-usb-stick'), sys)).toBe(0);
    symlinkSync(dev('nvme0n1'), join(root, 'dev', 'by-id-nvme'));
    expect(await writeZeroesMaxBytes(join(root, 'dev', 'by-id-nvme'), sys)).toBe(2199023255040);
  });
});

describe('writeImage on a target that cannot zero ranges by itself (a plain file: no sysfs queue)', () => {
  const root = mkdtempSync(join(tmpdir(), 'osbake-holes-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const B = 4096;
  // Image: 8 blocks, data in blocks 0 and 5 (1 and 6 as bytes), holes elsewhere.
  const image = Buffer.alloc(8 * B);
  image.fill(1, 0, B);
  image.fill(6, 5 * B, 6 * B);
  const bmap: Bmap = {
    version: '2.0',
    imageSize: image.length,
    blockSize: B,
    blocksCount: 8,
    mappedBlocksCount: 2,
    ranges: [
      { first: 0, last: 0 },
      { first: 5, last: 5 },
    ],
  };
  const burn = async (
    holes: HoleMode,
    o: { bmap?: Bmap; image?: Buffer; verify?: boolean; name?: string } = {},
  ) => {
    const img = join(root, `${o.name ?? holes}.img`);
    const target = join(root, `${o.name ?? holes}.target`);
    writeFileSync(img, o.image ?? image);
    writeFileSync(target, Buffer.alloc(10 * B, 0xee)); // old contents everywhere
    const said: string[] = [];
    const r = await writeImage({
      device: target,
      image: img,
      compressed: false,
      bmap: o.bmap ?? bmap,
      verify: o.verify ?? false,
      holes,
      log: createNullLogger(),
      progress: { start() {}, add() {}, end() {} },
      say: (l) => said.push(l),
      deviceSize: 10 * B,
    });
    return { r, said, got: readFileSync(target) };
  };

  it('auto: says so and leaves the holes (bmaptool behaviour); the data is written', async () => {
    const { r, said, got } = await burn('auto');
    expect(r.holes).toBe('left as they were');
    expect(said.join('\n')).toMatch(/cannot zero ranges by itself; holes keep their old contents/);
    expect(got.subarray(0, B).every((b) => b === 1)).toBe(true);
    expect(got.subarray(5 * B, 6 * B).every((b) => b === 6)).toBe(true);
    expect(got.subarray(B, 5 * B).every((b) => b === 0xee)).toBe(true);
  });

  it('zero: writes zeros into each hole up to the image end, nothing beyond', async () => {
    const { r, got } = await burn('zero');
    expect(r.holes).toBe('zeroed by writing');
    expect(got.subarray(0, 8 * B).equals(image)).toBe(true);
    expect(got.subarray(8 * B).every((b) => b === 0xee)).toBe(true);
  });

  it('an image whose size is not whole blocks: the last bytes go through the buffered descriptor', async () => {
    // O_DIRECT takes whole 4096-byte blocks only: 7 blocks and 100 bytes, data to the very end.
    const odd = Buffer.alloc(7 * B + 100);
    odd.fill(3, 0, B);
    odd.fill(9, 6 * B);
    const oddMap: Bmap = {
      ...bmap,
      imageSize: odd.length,
      blocksCount: 8,
      ranges: [
        { first: 0, last: 0 },
        { first: 6, last: 7 },
      ],
    };
    const { got } = await burn('keep', { bmap: oddMap, image: odd, verify: true, name: 'odd' });
    expect(got.subarray(0, B).equals(odd.subarray(0, B))).toBe(true);
    expect(got.subarray(6 * B, odd.length).equals(odd.subarray(6 * B))).toBe(true);
    expect(got.subarray(odd.length).every((b) => b === 0xee)).toBe(true);
  });

  it('a bmap whose block size O_DIRECT cannot use (1024): buffered writes, the same result', async () => {
    const k: Bmap = {
      ...bmap,
      blockSize: 1024,
      blocksCount: 32,
      ranges: [
        { first: 0, last: 3 },
        { first: 20, last: 23 },
      ],
    };
    const { got } = await burn('zero', { bmap: k, name: 'k1024' });
    expect(got.subarray(0, 8 * B).equals(image)).toBe(true);
  });

  it('reads back with O_DIRECT (no BLKFLSBUF, which a plain file would refuse) and finds the data', async () => {
    const { r } = await burn('zero', { verify: true, name: 'verified' });
    expect(r.verifySeconds).toBeGreaterThanOrEqual(0);
  });
});
