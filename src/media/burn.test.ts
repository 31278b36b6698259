import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { writeFully } from './burn.js';

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
