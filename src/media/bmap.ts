/**
 * Block maps for raw images: create one (data extents from FIEMAP through `filefrag -v`, a SHA-256
 * per range), find the one beside an image, read and validate it. Format: bmap-format.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { writeTextAtomic } from '../artifacts/store.js';
import { capture } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import {
  BMAP_BLOCK_SIZE,
  BMAP_VERSION,
  type Bmap,
  type BmapRange,
  type Extent,
  extentsToRanges,
  formatBmap,
  parseBmap,
  parseFilefrag,
  rangeBytes,
} from './bmap-format.js';

export interface ByteSink {
  start(label: string, total?: number): void;
  add(n: number): void;
  end(): void;
}

const CHUNK = 8 * 1024 * 1024;

/** Paths where the bmap of an image may be: `<image>.bmap`, and `<image without .zst>.bmap`. */
export function bmapCandidates(image: string): string[] {
  const out = [`${image}.bmap`];
  if (image.endsWith('.zst')) out.push(`${image.slice(0, -4)}.bmap`);
  return out;
}

export function findBmap(image: string): string | undefined {
  return bmapCandidates(image).find((p) => existsSync(p));
}

export async function readBmap(file: string): Promise<Bmap> {
  return parseBmap(await readFile(file, 'utf8'), file);
}

/** Data extents of a file by FIEMAP (`filefrag -v -s`, which syncs the file first). */
export async function dataExtentsByFiemap(image: string, log: Logger): Promise<Extent[]> {
  const out = await capture(['filefrag', '-v', '-s', '-b4096', image], { log, tag: 'filefrag' });
  return parseFilefrag(out);
}

/**
 * Data extents by reading the file: every block that is not all zeros. The fallback for file
 * systems without FIEMAP (tmpfs, some network file systems); slower, as holes are read too.
 */
export async function dataExtentsByScan(image: string, size: number, progress?: ByteSink): Promise<Extent[]> {
  const zero = Buffer.alloc(BMAP_BLOCK_SIZE);
  const buf = Buffer.allocUnsafe(CHUNK);
  const fh = await open(image, 'r');
  const extents: Extent[] = [];
  progress?.start(`scanning ${image}`, size);
  try {
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - pos), pos);
      if (bytesRead === 0) break;
      for (let o = 0; o < bytesRead; o += BMAP_BLOCK_SIZE) {
        const end = Math.min(o + BMAP_BLOCK_SIZE, bytesRead);
        if (buf.subarray(o, end).equals(zero.subarray(0, end - o))) continue;
        const last = extents[extents.length - 1];
        if (last && last.offset + last.length === pos + o) last.length += end - o;
        else extents.push({ offset: pos + o, length: end - o });
      }
      pos += bytesRead;
      progress?.add(bytesRead);
    }
  } finally {
    progress?.end();
    await fh.close();
  }
  return extents;
}

/** SHA-256 of each range of the image (bytes as bmaptool hashes them). */
async function hashRanges(
  image: string,
  b: Pick<Bmap, 'blockSize' | 'imageSize'>,
  ranges: BmapRange[],
  progress?: ByteSink,
): Promise<BmapRange[]> {
  const buf = Buffer.allocUnsafe(CHUNK);
  const fh = await open(image, 'r');
  const total = ranges.reduce((n, r) => n + rangeBytes(b, r).length, 0);
  progress?.start(`hashing ${image}`, total);
  try {
    const out: BmapRange[] = [];
    for (const r of ranges) {
      const { offset, length } = rangeBytes(b, r);
      const h = createHash('sha256');
      for (let done = 0; done < length; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, length - done), offset + done);
        if (bytesRead === 0) throw new Error(`${image} ended at byte ${offset + done} while hashing`);
        h.update(buf.subarray(0, bytesRead));
        done += bytesRead;
        progress?.add(bytesRead);
      }
      out.push({ ...r, sha256: h.digest('hex') });
    }
    return out;
  } finally {
    progress?.end();
    await fh.close();
  }
}

export interface CreatedBmap {
  bmap: Bmap;
  text: string;
  method: 'fiemap' | 'scan';
}

/**
 * Make the bmap of a raw image. Data ranges come from FIEMAP (allocated, written extents: a block
 * of zeros the image really holds stays mapped, as with bmaptool); where FIEMAP is not available
 * every non-zero block is data.
 */
export async function createBmap(image: string, log: Logger, progress?: ByteSink): Promise<CreatedBmap> {
  const size = (await stat(image)).size;
  let extents: Extent[];
  let method: CreatedBmap['method'] = 'fiemap';
  try {
    extents = await dataExtentsByFiemap(image, log);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'FIEMAP failed; scanning for non-zero blocks');
    method = 'scan';
    extents = await dataExtentsByScan(image, size, progress);
  }
  const blockSize = BMAP_BLOCK_SIZE;
  const blocksCount = Math.ceil(size / blockSize);
  const geometry = { imageSize: size, blockSize };
  const ranges = await hashRanges(image, geometry, extentsToRanges(extents, size, blockSize), progress);
  const text = formatBmap({ imageSize: size, blockSize, blocksCount, ranges });
  const mappedBlocksCount = ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  return {
    bmap: { version: BMAP_VERSION, imageSize: size, blockSize, blocksCount, mappedBlocksCount, ranges },
    text,
    method,
  };
}

/** Create the bmap and write it atomically to `dest` (default `<image>.bmap`). */
export async function writeBmapFor(
  image: string,
  log: Logger,
  progress?: ByteSink,
  dest = `${image}.bmap`,
): Promise<CreatedBmap & { file: string }> {
  const created = await createBmap(image, log, progress);
  await writeTextAtomic(dest, created.text);
  return { ...created, file: dest };
}
