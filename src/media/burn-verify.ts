/**
 * The read-back of a burn: every mapped range read from the device (O_DIRECT, else after
 * BLKFLSBUF) and compared with the bmap (or what was written); a mismatch tells a damaged image or
 * bmap from a drive that did not keep the data.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import { type BmapRange, mappedBytes, rangeBytes } from './bmap-format.js';
import { DIRECT_ALIGN, mappedChunks, rawChunks, roundUp } from './burn-chunks.js';
import { checkAbort, shortWrite, type WriteImageOptions } from './burn-io.js';

export function imageMismatch(
  o: WriteImageOptions,
  r: BmapRange | undefined,
  got: string,
  want: string,
  note: string,
) {
  return new UserError(
    'E_BURN_IMAGE',
    `${o.image} does not match its bmap: blocks ${r?.first}-${r?.last} have sha256 ${got}, the bmap says ${want} (${note})`,
    'the image or its bmap is damaged or they do not belong together: recreate the bmap or fetch the image again',
  );
}

/** SHA-256 of one range of the (raw) image file. */
async function hashImageRange(o: WriteImageOptions, r: BmapRange): Promise<string> {
  const h = createHash('sha256');
  for await (const c of rawChunks(o.image, { ...o.bmap, ranges: [r] })) h.update(c.data);
  return h.digest('hex');
}

/** Read every mapped range back from the device and compare it with the bmap (or the written data). */
export async function verifyDevice(
  fh: FileHandle,
  directHandle: FileHandle | undefined,
  o: WriteImageOptions,
  written: (string | undefined)[],
): Promise<void> {
  // The reads must come from the device, not from the page cache: O_DIRECT where the writer could
  // use it (whole blocks only: the image's last range is read up to its block's end, which must lie
  // on the device), else BLKFLSBUF (write back and drop the device's page cache) and buffered reads.
  const blocksEnd = roundUp(o.bmap.imageSize, DIRECT_ALIGN);
  const direct = blocksEnd <= (o.deviceSize ?? o.bmap.imageSize) ? directHandle : undefined;
  o.log.info({ direct: direct !== undefined }, 'read-back');
  // A regular file has no device cache to drop: after the fsync its reads come from the file.
  if (!direct && !o.file) await run(['blockdev', '--flushbufs', o.device], { log: o.log, tag: 'blockdev' });
  o.progress.start(`verifying ${o.device}`, mappedBytes(o.bmap));
  try {
    // One read ahead (mappedChunks): the next read runs in libuv's pool while this thread hashes.
    const chunks = mappedChunks(
      direct ?? fh,
      o.bmap,
      (offset, done, length) => shortWrite(o.device, offset + done, done, length, 'read back ended early'),
      { direct: direct !== undefined },
    );
    let h = createHash('sha256');
    for await (const c of chunks) {
      checkAbort(o.signal);
      h.update(c.data);
      o.progress.add(c.data.length);
      const r = o.bmap.ranges[c.range] as BmapRange;
      const { offset, length } = rangeBytes(o.bmap, r);
      if (c.offset + c.data.length < offset + length) continue;
      const i = c.range;
      const got = h.digest('hex');
      const want = r.sha256 ?? written[i];
      if (got !== want) {
        // The image was not hashed while writing: tell a bad image/bmap from a bad drive.
        if (r.sha256 && !o.compressed && written[i] === undefined && (await hashImageRange(o, r)) === got) {
          throw imageMismatch(o, r, got, r.sha256, `${o.device} holds the image as it is`);
        }
        throw new UserError(
          'E_BURN_VERIFY',
          `verification failed: blocks ${r.first}-${r.last} (bytes ${offset}..${offset + length - 1}) of ${o.device} read back with sha256 ${got}, expected ${want}`,
          'the drive did not keep what was written: it may be failing or fake-capacity; try another drive',
        );
      }
      h = createHash('sha256');
    }
  } finally {
    o.progress.end();
  }
}
