import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Bmap,
  extentsToRanges,
  formatBmap,
  holeExtents,
  mappedBytes,
  parseBmap,
  parseFilefrag,
  zeroSpans,
} from './bmap-format.js';

const testdata = join(__dirname, 'testdata');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('parseBmap', () => {
  it('reads a bmap written by bmaptool 3.6 and checks its file checksum', () => {
    const b = parseBmap(readFileSync(join(testdata, 'bmaptool-3.6.bmap'), 'utf8'));
    expect(b).toEqual({
      version: '2.0',
      imageSize: 67108864,
      blockSize: 4096,
      blocksCount: 16384,
      mappedBlocksCount: 769,
      ranges: [
        {
          first: 1280,
          last: 2047,
          sha256: '71deb9504af223d66e981b416dcae8e8f4ecc8d72b026b04c9f40ccad18c4ef5',
        },
        {
          first: 10000,
          last: 10000,
          sha256: '9767fa38381c3cf8deb976b4b59131e496524af1fc4794984499b9bfa73eb00d',
        },
      ],
    });
    expect(mappedBytes(b)).toBe(769 * 4096);
  });

  it('round-trips what formatBmap writes, including a short last block', () => {
    const text = formatBmap({
      imageSize: 10_000,
      blockSize: 4096,
      blocksCount: 3,
      ranges: [
        { first: 0, last: 0, sha256: sha('a') },
        { first: 2, last: 2, sha256: sha('b') },
      ],
    });
    const b = parseBmap(text);
    expect(b.mappedBlocksCount).toBe(2);
    expect(b.ranges).toEqual([
      { first: 0, last: 0, sha256: sha('a') },
      { first: 2, last: 2, sha256: sha('b') },
    ]);
    expect(mappedBytes(b)).toBe(4096 + (10_000 - 8192));
    expect(holeExtents(b)).toEqual([{ offset: 4096, length: 4096 }]);
  });

  it('accepts an empty block map', () => {
    const b = parseBmap(formatBmap({ imageSize: 8192, blockSize: 4096, blocksCount: 2, ranges: [] }));
    expect(b.ranges).toEqual([]);
    expect(holeExtents(b)).toEqual([{ offset: 0, length: 8192 }]);
  });

  const good = formatBmap({
    imageSize: 1 << 20,
    blockSize: 4096,
    blocksCount: 256,
    ranges: [
      { first: 0, last: 9, sha256: sha('x') },
      { first: 20, last: 20, sha256: sha('y') },
    ],
  });
  /** Change the text, then fix BmapFileChecksum so that only the intended problem remains. */
  const edit = (from: string, to: string) => {
    const t = good.replace(from, to);
    const recorded = /<BmapFileChecksum> (\w+) /.exec(t)?.[1] ?? '';
    const zeroed = t.replace(recorded, '0'.repeat(64));
    return zeroed.replace('0'.repeat(64), sha(zeroed));
  };

  it.each([
    ['damaged file (checksum)', good.replace('> 0-9 <', '> 0-8 <'), /damaged: its checksum is/],
    ['not XML', '<bmap', /not valid XML|not a bmap/],
    ['not a bmap', '<?xml version="1.0"?><foo/>', /not a bmap file/],
    ['version 1.3', edit('version="2.0"', 'version="1.3"'), /version 1\.3 is not supported/],
    ['sha1', edit('<ChecksumType> sha256', '<ChecksumType> sha1'), /checksum type sha1/],
    ['block count', edit('<BlocksCount> 256 ', '<BlocksCount> 255 '), /BlocksCount 255 does not match/],
    ['mapped count', edit('<MappedBlocksCount> 11 ', '<MappedBlocksCount> 12 '), /MappedBlocksCount 12/],
    ['range beyond image', edit('> 20 <', '> 256 <'), /beyond the image/],
    ['overlap', edit('> 20 <', '> 9 <'), /overlaps/],
    ['reversed', edit('> 0-9 <', '> 9-0 <'), /ends before it starts/],
    ['bad range text', edit('> 20 <', '> x <'), /is not "N" or "N-M"/],
    ['bad chksum', edit(sha('y'), 'nope'), /chksum is not a SHA-256/],
  ])('rejects %s', (_name, text, re) => {
    expect(() => parseBmap(text, 'x.bmap')).toThrow(re);
  });
});

describe('extentsToRanges', () => {
  it.each<[string, { offset: number; length: number }[], number, [number, number][]]>([
    ['none', [], 16384, []],
    ['aligned', [{ offset: 4096, length: 8192 }], 16384, [[1, 2]]],
    ['rounds outwards', [{ offset: 100, length: 5000 }], 16384, [[0, 1]]],
    [
      'merges touching and overlapping, any order',
      [
        { offset: 8192, length: 4096 },
        { offset: 0, length: 4096 },
        { offset: 4096, length: 6000 },
      ],
      65536,
      [[0, 2]],
    ],
    ['clips at the image end', [{ offset: 8192, length: 1 << 20 }], 10000, [[2, 2]]],
    [
      'drops empty and out-of-image extents',
      [
        { offset: 0, length: 0 },
        { offset: 20000, length: 5 },
      ],
      10000,
      [],
    ],
  ])('%s', (_n, extents, size, want) => {
    expect(extentsToRanges(extents, size, 4096).map((r) => [r.first, r.last])).toEqual(want);
  });
});

describe('parseFilefrag', () => {
  it('reads filefrag -v output and skips unwritten extents', () => {
    expect(parseFilefrag(readFileSync(join(testdata, 'filefrag-v.txt'), 'utf8'))).toEqual([
      { offset: 1280 * 4096, length: 768 * 4096 },
      { offset: 10000 * 4096, length: 4096 },
    ]);
  });

  it('fails without the block size line', () => {
    expect(() => parseFilefrag('img: 0 extents found')).toThrow(/blocks of N bytes/);
  });
});

describe('formatBmap', () => {
  it('has the elements bmaptool writes, in its order', () => {
    const text = formatBmap({
      imageSize: 4096,
      blockSize: 4096,
      blocksCount: 1,
      ranges: [{ first: 0, last: 0 }],
    });
    const tags = [...text.matchAll(/<(\w+)[ >]/g)].map((m) => m[1]);
    expect(tags).toEqual([
      'bmap',
      'ImageSize',
      'BlockSize',
      'BlocksCount',
      'MappedBlocksCount',
      'ChecksumType',
      'BmapFileChecksum',
      'BlockMap',
      'Range',
    ]);
    const b: Bmap = parseBmap(text);
    expect(b.ranges).toEqual([{ first: 0, last: 0 }]);
  });
});

describe('zeroSpans', () => {
  const K = 4096;
  // Data: block 0 (1 block), blocks 10-29 (20), block 40 (1), blocks 50-59 (10); image: 100 blocks.
  const b = parseBmap(
    formatBmap({
      imageSize: 100 * K,
      blockSize: K,
      blocksCount: 100,
      ranges: [
        { first: 0, last: 0 },
        { first: 10, last: 29 },
        { first: 40, last: 40 },
        { first: 50, last: 59 },
      ],
    }),
  );

  it('with enough spans: exactly the holes', () => {
    expect(zeroSpans(b, 100 * K, 10)).toEqual(holeExtents(b));
  });

  it('fewer spans: the largest data ranges separate them, small ones are zeroed with the holes', () => {
    expect(zeroSpans(b, 100 * K, 3)).toEqual([
      { offset: 0, length: 10 * K },
      { offset: 30 * K, length: 20 * K },
      { offset: 60 * K, length: 40 * K },
    ]);
    expect(zeroSpans(b, 100 * K, 1)).toEqual([{ offset: 0, length: 100 * K }]);
  });

  it('a data range at the very end leaves no empty span; the end can lie past the image', () => {
    const tail = parseBmap(
      formatBmap({ imageSize: 8 * K, blockSize: K, blocksCount: 8, ranges: [{ first: 4, last: 7 }] }),
    );
    expect(zeroSpans(tail, 8 * K, 4)).toEqual([{ offset: 0, length: 4 * K }]);
    expect(zeroSpans(tail, 8 * K + 512, 4)).toEqual([
      { offset: 0, length: 4 * K },
      { offset: 8 * K, length: 512 },
    ]);
  });
});
