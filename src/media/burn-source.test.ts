import { describe, expect, it } from 'vitest';
import { bmapCandidates } from './bmap.js';
import { formatFromMagic } from './burn-source.js';

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
