/**
 * The bmap XML format of bmap-tools (version 2.0, what `bmaptool create` writes): which blocks of
 * a raw image hold data, with a SHA-256 per range and a checksum of the bmap file itself.
 * Pure: format, parse and validate, and turn data extents into block ranges.
 */
import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { UserError } from '../errors.js';

export const BMAP_VERSION = '2.0';
export const BMAP_BLOCK_SIZE = 4096;

/** Blocks first..last (inclusive) hold data; sha256 covers exactly those bytes of the image. */
export interface BmapRange {
  first: number;
  last: number;
  sha256?: string;
}

export interface Bmap {
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  ranges: BmapRange[];
}

/** A byte extent of the image that holds data. */
export interface Extent {
  offset: number;
  length: number;
}

/** First byte and byte length of a range (the last block may be cut short by the image size). */
export function rangeBytes(b: Pick<Bmap, 'blockSize' | 'imageSize'>, r: BmapRange): Extent {
  const offset = r.first * b.blockSize;
  const end = Math.min((r.last + 1) * b.blockSize, b.imageSize);
  return { offset, length: end - offset };
}

export function mappedBytes(b: Bmap): number {
  return b.ranges.reduce((n, r) => n + rangeBytes(b, r).length, 0);
}

/** Data extents (bytes, any order, may overlap) → sorted, merged block ranges (rounded outwards). */
export function extentsToRanges(
  extents: readonly Extent[],
  imageSize: number,
  blockSize: number,
): BmapRange[] {
  const blocksCount = Math.ceil(imageSize / blockSize);
  const spans = extents
    .filter((e) => e.length > 0 && e.offset < imageSize)
    .map((e) => ({
      first: Math.floor(e.offset / blockSize),
      last: Math.min(Math.ceil((e.offset + e.length) / blockSize) - 1, blocksCount - 1),
    }))
    .sort((a, b) => a.first - b.first);
  const out: BmapRange[] = [];
  for (const s of spans) {
    const prev = out[out.length - 1];
    if (prev && s.first <= prev.last + 1) prev.last = Math.max(prev.last, s.last);
    else out.push({ ...s });
  }
  return out;
}

/** The gaps between ranges (in bytes, up to the image size): what the bmap calls holes. */
export function holeExtents(b: Bmap): Extent[] {
  const holes: Extent[] = [];
  let pos = 0;
  for (const r of b.ranges) {
    const { offset, length } = rangeBytes(b, r);
    if (offset > pos) holes.push({ offset: pos, length: offset - pos });
    pos = offset + length;
  }
  if (pos < b.imageSize) holes.push({ offset: pos, length: b.imageSize - pos });
  return holes;
}

/**
 * The holes grouped into at most `max` spans to zero with one command each (each command is a
 * process): the largest data ranges separate the spans, the smaller ones lie inside a span and are
 * zeroed too before they are written. Spans end at `end` (the image size rounded to the sector).
 */
export function zeroSpans(b: Bmap, end: number, max: number): Extent[] {
  const data = b.ranges.map((r) => rangeBytes(b, r));
  const keep = new Set(
    data
      .map((d, i) => ({ i, length: d.length }))
      .sort((x, y) => y.length - x.length || x.i - y.i)
      .slice(0, Math.max(0, max - 1))
      .map((x) => x.i),
  );
  const spans: Extent[] = [];
  let pos = 0;
  for (const [i, d] of data.entries()) {
    if (!keep.has(i)) continue;
    if (d.offset > pos) spans.push({ offset: pos, length: d.offset - pos });
    pos = d.offset + d.length;
  }
  if (pos < end) spans.push({ offset: pos, length: end - pos });
  return spans;
}

function humanSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

const ZERO_SUM = '0'.repeat(64);

/** bmap XML as bmaptool writes it (same elements, order and comments), BmapFileChecksum filled in. */
export function formatBmap(b: Omit<Bmap, 'version' | 'mappedBlocksCount'>): string {
  const mapped = b.ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  const pct = b.blocksCount > 0 ? ((mapped * 100) / b.blocksCount).toFixed(1) : '0.0';
  const lines = [
    '<?xml version="1.0" ?>',
    '<!-- Block map of a raw image, written by osbake in the format of bmap-tools (bmaptool):',
    '     the blocks listed under BlockMap hold data and are written to the target device;',
    '     the others are holes. Each range carries the SHA-256 of its bytes. -->',
    '',
    `<bmap version="${BMAP_VERSION}">`,
    `    <!-- Image size in bytes: ${humanSize(b.imageSize)} -->`,
    `    <ImageSize> ${b.imageSize} </ImageSize>`,
    '',
    '    <!-- Size of a block in bytes -->',
    `    <BlockSize> ${b.blockSize} </BlockSize>`,
    '',
    '    <!-- Count of blocks in the image file -->',
    `    <BlocksCount> ${b.blocksCount} </BlocksCount>`,
    '',
    `    <!-- Count of mapped blocks: ${humanSize(mapped * b.blockSize)} or ${pct}% -->`,
    `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>`,
    '',
    '    <!-- Type of checksum used in this file -->',
    '    <ChecksumType> sha256 </ChecksumType>',
    '',
    '    <!-- The checksum of this bmap file. When it is calculated, the value of',
    '         the checksum has be zero (all ASCII "0" symbols).  -->',
    `    <BmapFileChecksum> ${ZERO_SUM} </BmapFileChecksum>`,
    '',
    '    <!-- The block map which consists of elements which may either be a',
    "         range of blocks or a single block. The 'chksum' attribute",
    '         (if present) is the checksum of this blocks range. -->',
    '    <BlockMap>',
    ...b.ranges.map((r) => {
      const attr = r.sha256 ? ` chksum="${r.sha256}"` : '';
      const span = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
      return `        <Range${attr}> ${span} </Range>`;
    }),
    '    </BlockMap>',
    '</bmap>',
    '',
  ];
  const text = lines.join('\n');
  const sum = createHash('sha256').update(text).digest('hex');
  return text.replace(`<BmapFileChecksum> ${ZERO_SUM} `, `<BmapFileChecksum> ${sum} `);
}

const intText = z
  .union([z.string(), z.number()])
  .transform((v) => String(v).trim())
  .pipe(z.string().regex(/^\d+$/, 'must be a non-negative integer'))
  .transform(Number);

const RangeSchema = z.union([
  z.string(),
  z.number(),
  z.object({ '#text': z.union([z.string(), z.number()]), '@_chksum': z.string().optional() }),
]);

const BmapXmlSchema = z.object({
  bmap: z.object({
    '@_version': z.string().regex(/^\d+\.\d+$/, 'must be major.minor'),
    ImageSize: intText,
    BlockSize: intText,
    BlocksCount: intText,
    MappedBlocksCount: intText,
    ChecksumType: z.string().transform((s) => s.trim()),
    BmapFileChecksum: z.string().transform((s) => s.trim()),
    BlockMap: z
      .union([z.literal(''), z.object({ Range: z.union([RangeSchema, z.array(RangeSchema)]).optional() })])
      .transform((m) =>
        m === '' || m.Range === undefined ? [] : Array.isArray(m.Range) ? m.Range : [m.Range],
      ),
  }),
});

function bad(file: string, what: string): UserError {
  return new UserError(
    'E_BMAP',
    `${file}: ${what}`,
    'recreate the block map: bmaptool create IMAGE -o IMAGE.bmap (or delete it and let osbake burn make one)',
  );
}

/** Parse and validate bmap XML (version 2.x / 1.4, sha256), including its own checksum. */
export function parseBmap(text: string, file = 'bmap'): Bmap {
  let raw: unknown;
  try {
    const parser = new XMLParser({
      ignoreAttributes: false,
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: true,
    });
    raw = parser.parse(text, true);
  } catch (err) {
    throw bad(file, `not valid XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = BmapXmlSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(file, `not a bmap file: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'bad shape'}`);
  }
  const x = parsed.data.bmap;
  const version = x['@_version'];
  if (!(version.startsWith('2.') || version === '1.4')) {
    throw bad(file, `bmap format version ${version} is not supported (only 2.x, written by bmaptool ≥ 3.2)`);
  }
  if (x.ChecksumType !== 'sha256')
    throw bad(file, `checksum type ${x.ChecksumType} is not supported (sha256)`);
  if (!/^[0-9a-f]{64}$/.test(x.BmapFileChecksum)) throw bad(file, 'BmapFileChecksum is not a SHA-256');
  const zeroed = text.replace(x.BmapFileChecksum, ZERO_SUM);
  const actual = createHash('sha256').update(zeroed).digest('hex');
  if (actual !== x.BmapFileChecksum) {
    throw bad(file, `the file is damaged: its checksum is ${actual}, it records ${x.BmapFileChecksum}`);
  }
  if (x.BlockSize <= 0 || x.BlockSize % 512 !== 0)
    throw bad(file, `BlockSize ${x.BlockSize} is not a multiple of 512`);
  if (x.BlocksCount !== Math.ceil(x.ImageSize / x.BlockSize)) {
    throw bad(
      file,
      `BlocksCount ${x.BlocksCount} does not match ImageSize ${x.ImageSize} / BlockSize ${x.BlockSize}`,
    );
  }
  const ranges: BmapRange[] = [];
  for (const r of x.BlockMap) {
    const body = String(typeof r === 'object' ? r['#text'] : r).trim();
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(body);
    if (!m) throw bad(file, `Range "${body}" is not "N" or "N-M"`);
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    const sha256 = typeof r === 'object' ? r['@_chksum'] : undefined;
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256))
      throw bad(file, `Range ${body}: chksum is not a SHA-256`);
    const prev = ranges[ranges.length - 1];
    if (last < first) throw bad(file, `Range ${body} ends before it starts`);
    if (last >= x.BlocksCount) throw bad(file, `Range ${body} is beyond the image (${x.BlocksCount} blocks)`);
    if (prev && first <= prev.last) throw bad(file, `Range ${body} overlaps or precedes the one before it`);
    ranges.push(sha256 === undefined ? { first, last } : { first, last, sha256 });
  }
  const mapped = ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  if (mapped !== x.MappedBlocksCount) {
    throw bad(file, `MappedBlocksCount ${x.MappedBlocksCount} does not match the ranges (${mapped} blocks)`);
  }
  return {
    version,
    imageSize: x.ImageSize,
    blockSize: x.BlockSize,
    blocksCount: x.BlocksCount,
    mappedBlocksCount: x.MappedBlocksCount,
    ranges,
  };
}

/**
 * Extents with data from `filefrag -v` (FIEMAP) output. Unwritten (preallocated) extents read as
 * zeros and count as holes, as SEEK_DATA reports them.
 */
export function parseFilefrag(output: string): Extent[] {
  const unit = /blocks of (\d+) bytes/.exec(output);
  if (!unit) throw new Error('filefrag: no "blocks of N bytes" line');
  const bs = Number(unit[1]);
  const extents: Extent[] = [];
  for (const line of output.split('\n')) {
    const f = line.split(':');
    if (f.length < 5 || !/^\s*\d+$/.test(f[0] ?? '')) continue;
    const logical = /^\s*(\d+)\.\.\s*(\d+)\s*$/.exec(f[1] ?? '');
    const length = /^\s*(\d+)\s*$/.exec(f[3] ?? '');
    if (!logical || !length) continue;
    const flags = (f[f.length - 1] ?? '').trim().split(',');
    if (flags.includes('unwritten')) continue;
    extents.push({ offset: Number(logical[1]) * bs, length: Number(length[1]) * bs });
  }
  return extents;
}
