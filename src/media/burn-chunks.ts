/**
 * The mapped data of an image, chunk by chunk, for the writer: positional reads of a raw file (one
 * read ahead), or a zstd-compressed raw decompressed by the zstd CLI with the holes skipped.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { runStreaming } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import { type Bmap, type Extent, rangeBytes } from './bmap-format.js';

export const CHUNK = 8 * 1024 * 1024;

/** O_DIRECT wants buffers, offsets and lengths aligned to the logical block size (512 or 4096). */
export const DIRECT_ALIGN = 4096;

/**
 * Buffers whose memory starts on a page boundary, as O_DIRECT needs: Node's allocator promises
 * no alignment (malloc), but a WebAssembly.Memory is allocated in whole pages by V8.
 */
export function alignedBuffers(count: number, size: number): Buffer[] {
  const page = 64 * 1024;
  const each = Math.ceil(size / page) * page;
  const mem = new WebAssembly.Memory({ initial: (count * each) / page });
  return Array.from({ length: count }, (_, i) => Buffer.from(mem.buffer, i * each, size));
}

export const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

export interface Chunk {
  range: number;
  offset: number;
  data: Buffer;
}

/**
 * The mapped ranges of an open file or device, chunk by chunk, with positional reads one chunk
 * ahead of the consumer. A read that comes back short is continued; one that returns nothing
 * before the range ends is `ended(offset of the range, bytes of it read, its length)`, thrown
 * before that chunk is handed over. Used to write an image and to read the device back.
 */
export async function* mappedChunks(
  fh: FileHandle,
  bmap: Bmap,
  ended: (rangeOffset: number, done: number, length: number) => Error,
  o: { direct?: boolean } = {},
): AsyncGenerator<Chunk> {
  // Two page-aligned buffers in turn: the consumer holds one (and may hand it to an O_DIRECT
  // write) while the next read fills the other. (A fresh buffer per chunk costs page faults and
  // GC: measurable CPU on a 2-core machine.)
  const bufs = alignedBuffers(2, CHUNK);
  let turn = 0;
  const reads = (async function* () {
    for (const [i, r] of bmap.ranges.entries()) {
      const { offset, length } = rangeBytes(bmap, r);
      for (let done = 0; done < length; ) {
        const n = Math.min(CHUNK, length - done);
        const buf = bufs[turn++ % 2] as Buffer;
        // An O_DIRECT read of a range cut short by the image size asks for whole blocks.
        const want = o.direct ? roundUp(n, DIRECT_ALIGN) : n;
        for (let got = 0; got < n; ) {
          const { bytesRead } = await fh.read(buf, got, want - got, offset + done + got);
          if (bytesRead === 0) throw ended(offset, done + got, length);
          got += bytesRead;
        }
        yield { range: i, offset: offset + done, data: buf.subarray(0, n) };
        done += n;
      }
    }
  })();
  let next: Promise<IteratorResult<Chunk>> | undefined = reads.next();
  try {
    for (;;) {
      const r: IteratorResult<Chunk> = await next;
      if (r.done) return;
      next = reads.next();
      yield r.value;
    }
  } finally {
    // The consumer stopped early: let the read in flight finish before the file is closed.
    await next?.catch(() => undefined);
  }
}

/** Mapped data of a raw image file, read one chunk ahead of the writer. */
export async function* rawChunks(image: string, bmap: Bmap): AsyncGenerator<Chunk> {
  const fh = await open(image, 'r');
  try {
    yield* mappedChunks(
      fh,
      bmap,
      () =>
        new UserError(
          'E_BURN_IMAGE',
          `${image} is shorter than its bmap says (${bmap.imageSize} bytes)`,
          'the bmap belongs to another image: recreate it (delete it and burn again)',
        ),
    );
  } finally {
    await fh.close();
  }
}

/** Mapped data of a zstd-compressed raw image: decompressed by the zstd CLI, holes skipped. */
export async function* zstdChunks(image: string, bmap: Bmap, log: Logger): AsyncGenerator<Chunk> {
  const spans = bmap.ranges.map((r) => rangeBytes(bmap, r));
  const child = runStreaming(['zstd', '-dcq', '--', image], { log, tag: 'zstd' });
  let ok = false;
  try {
    let ri = 0;
    let pos = 0;
    const [acc] = alignedBuffers(1, CHUNK) as [Buffer];
    let accLen = 0;
    let accOff = 0;
    for await (const c of child.stdout) {
      const chunk = c as Buffer;
      let cpos = 0;
      while (cpos < chunk.length && ri < spans.length) {
        const span = spans[ri] as Extent;
        const abs = pos + cpos;
        if (abs < span.offset) {
          cpos += Math.min(span.offset - abs, chunk.length - cpos);
          continue;
        }
        if (accLen === 0) accOff = abs;
        const n = Math.min(span.offset + span.length - abs, chunk.length - cpos, CHUNK - accLen);
        chunk.copy(acc, accLen, cpos, cpos + n);
        accLen += n;
        cpos += n;
        const rangeDone = abs + n === span.offset + span.length;
        if (accLen === CHUNK || rangeDone) {
          // The writer is done with a chunk before it asks for the next: acc can be reused.
          yield { range: ri, offset: accOff, data: acc.subarray(0, accLen) };
          accLen = 0;
          if (rangeDone) ri++;
        }
      }
      pos += chunk.length;
    }
    await child.done;
    if (pos !== bmap.imageSize) {
      throw new UserError(
        'E_BURN_IMAGE',
        `${image} decompresses to ${pos} bytes, its bmap says ${bmap.imageSize}`,
        'the bmap belongs to another image: recreate it from the uncompressed image',
      );
    }
    ok = true;
  } finally {
    if (!ok) await child.stop();
  }
}
