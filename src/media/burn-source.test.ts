import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import { bmapCandidates } from './bmap.js';
import { formatFromMagic, prepareImage } from './burn-source.js';

describe('formatFromMagic', () => {
  it.each([
    ['qcow2', [0x51, 0x46, 0x49, 0xfb], 'qcow2'],
    ['zstd frame', [0x28, 0xb5, 0x2f, 0xfd], 'zst'],
    ['MBR / anything else', [0xeb, 0x63, 0x90, 0x00], 'raw'],
    ['empty file', [], 'raw'],
  ])('%s', (_n, bytes, want) => {
    expect(formatFromMagic(Buffer.from(bytes))).toBe(want);
  });
});

describe('bmapCandidates', () => {
  it('looks beside the image, and for .zst also beside the uncompressed name', () => {
    expect(bmapCandidates('/s/a.raw')).toEqual(['/s/a.raw.bmap']);
    expect(bmapCandidates('/s/a.raw.zst')).toEqual(['/s/a.raw.zst.bmap', '/s/a.raw.bmap']);
  });
});

describe('prepareImage', () => {
  it('refuses an empty image before anything else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-empty-'));
    const file = join(dir, 'empty.raw');
    await writeFile(file, '');
    try {
      await expect(
        prepareImage({ what: file, path: file }, { log: createNullLogger(), say: () => undefined }),
      ).rejects.toMatchObject({ code: 'E_EMPTY_IMAGE', message: `${file} is empty (0 bytes)` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
