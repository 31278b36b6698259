/**
 * The stick's payload (block map, ranges, pieces, payload.zst) cached under
 * <workDir>/cache/payload/<key>/, the key being what makes its bytes: the payload image's SHA-256
 * and build name, the zstd level and zstd's version, the piece size and this format. Compressing
 * debian12-base's 1.1 GiB at zstd -19 takes about 4 minutes on two cores; a stick made again for
 * the same release (other nodes:, a new installer) takes the entry as it is — after checking each
 * frame of payload.zst against the SHA-256 that payload.pieces records (a damaged entry is made
 * again, never put on a stick).
 */
import { createHash } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { open, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashInputs } from '../artifacts/checksum.js';
import { ensureCacheDir } from '../config/cache-dir.js';
import type { Project } from '../config/project.js';
import { capture } from '../exec/run.js';
import { INPUT_CAPS, readInputText } from '../fsx/input.js';
import type { Logger } from '../log/logger.js';
import type { ByteProgress } from '../log/progress.js';
import {
  checkPieces,
  PIECE_BYTES,
  type PreparedPayload,
  parsePayloadRanges,
  parsePieces,
  preparePayload,
} from './payload.js';

/** Bump when the files or their meaning change: old entries are then never taken. */
const PAYLOAD_CACHE_FORMAT = 1;
const MARKER = 'payload.json';

export interface PayloadRequest {
  project: Project;
  /** The payload image (qcow2 in the store) and what the release records of it. */
  image: string;
  sha256: string;
  name: string;
  level: number;
  scratchDir: string;
  log: Logger;
  signal: AbortSignal;
  progress: (t: string) => void;
  bytes?: ByteProgress;
}

export type CachedPayload = Omit<PreparedPayload, 'raw'> & { dir: string; cached: boolean };

/** The cache entry's directory for a request (zstd's version read from the tool). */
async function entryDir(o: PayloadRequest): Promise<string> {
  const zstd = await capture(['zstd', '--version'], { log: o.log, signal: o.signal });
  const key = hashInputs({
    format: PAYLOAD_CACHE_FORMAT,
    image: o.sha256,
    name: o.name,
    level: o.level,
    piece: PIECE_BYTES,
    zstd,
  }).slice(0, 16);
  return join(o.project.workDir, 'cache', 'payload', key);
}

function filesOf(dir: string, name: string) {
  return {
    bmapFile: join(dir, `${name}.bmap`),
    rangesFile: join(dir, 'payload.ranges'),
    packedFile: join(dir, 'payload.zst'),
    piecesFile: join(dir, 'payload.pieces'),
  };
}

interface PayloadFacts {
  rawSize: number;
  dataBytes: number;
  ranges: number;
}

/** The entry's own text files, read as every record is (regular files, no symlink, capped). */
function readOwn(file: string): Promise<string> {
  return readInputText(file, {
    what: 'the payload cache entry',
    maxBytes: INPUT_CAPS.record,
    noSymlink: true,
  });
}

/** The entry's facts, or undefined when they are not three whole numbers. */
async function readFacts(dir: string): Promise<PayloadFacts | undefined> {
  try {
    const f = JSON.parse(await readOwn(join(dir, MARKER))) as Record<string, unknown>;
    const n = (k: string) =>
      Number.isSafeInteger(f[k]) && (f[k] as number) >= 0 ? (f[k] as number) : undefined;
    const rawSize = n('rawSize');
    const dataBytes = n('dataBytes');
    const ranges = n('ranges');
    return rawSize === undefined || dataBytes === undefined || ranges === undefined
      ? undefined
      : { rawSize, dataBytes, ranges };
  } catch {
    return undefined;
  }
}

/**
 * The pieces cover the ranges and payload.zst exactly (checkPieces, as serve --netboot checks a
 * stick), and every frame has the SHA-256 payload.pieces records.
 */
export async function framesIntact(dir: string): Promise<boolean> {
  try {
    const ranges = parsePayloadRanges(await readOwn(join(dir, 'payload.ranges')));
    const pieces = parsePieces(await readOwn(join(dir, 'payload.pieces')));
    // Opened without following a symlink; the checks are of what was opened.
    const f = await open(join(dir, 'payload.zst'), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await f.stat();
      if (!st.isFile()) return false;
      checkPieces(ranges, pieces, st.size, dir);
      for (const p of pieces) {
        const buf = Buffer.alloc(p.zstLength);
        const { bytesRead } = await f.read(buf, 0, p.zstLength, p.zstOffset);
        if (bytesRead !== p.zstLength) return false;
        if (createHash('sha256').update(buf).digest('hex') !== p.sha256) return false;
      }
    } finally {
      await f.close();
    }
    return true;
  } catch {
    return false;
  }
}

/** The payload of `image`: from the cache (checked), or made and cached. */
export async function cachedPayload(o: PayloadRequest): Promise<CachedPayload> {
  const dir = await entryDir(o);
  if (existsSync(join(dir, MARKER))) {
    o.progress('checking the cached payload');
    if (!(await readFacts(dir)) || !(await framesIntact(dir))) {
      o.log.warn({ dir }, 'cached payload damaged: made again');
      o.progress(`the cached payload ${dir} is damaged: making it again`);
      await rm(dir, { recursive: true, force: true });
    }
  }
  const { cached } = await ensureCacheDir({
    dir,
    marker: MARKER,
    what: `the payload cache entry ${dir}`,
    scratch: join(o.scratchDir, 'payload'),
    log: o.log,
    progress: o.progress,
    make: async (out) => {
      const p = await preparePayload({
        image: o.image,
        dir: out,
        name: o.name,
        log: o.log,
        signal: o.signal,
        progress: o.progress,
        ...(o.bytes ? { bytes: o.bytes } : {}),
        level: o.level,
      });
      // The stick needs only the data ranges, not the raw image.
      await rm(p.raw, { force: true });
      const facts: PayloadFacts = { rawSize: p.rawSize, dataBytes: p.dataBytes, ranges: p.ranges };
      await writeFile(join(out, MARKER), `${JSON.stringify(facts)}\n`);
    },
  });
  // Marks the entry as used (osbake clean removes entries unused for long).
  if (cached) await utimes(dir, new Date(), new Date()).catch(() => undefined);
  const facts = await readFacts(dir);
  if (!facts) throw new Error(`payload cache entry ${dir}: ${MARKER} unreadable just after it was made`);
  return { ...filesOf(dir, o.name), ...facts, dir, cached };
}
