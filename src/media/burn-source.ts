/**
 * What `osbake burn <image|release>` writes: a file (raw, .zst raw or qcow2), a build artifact in
 * store/builds/, or the installer of a release in manifest.yaml; and the block map that goes with it
 * (read from beside the image, or made now). A qcow2 is converted to a temporary raw first.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { buildsDir } from '../artifacts/store.js';
import { writeFileAtomically } from '../config/atomic.js';
import type { Project } from '../config/project.js';
import { UserError, withContext } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import { type ByteSink, createBmap, findBmap, readBmap } from './bmap.js';
import { BMAP_BLOCK_SIZE, BMAP_VERSION, type Bmap } from './bmap-format.js';

export type ImageFormat = 'raw' | 'zst' | 'qcow2';

/** Suffixes tried after an artifact name in store/builds/. */
export const ARTIFACT_SUFFIXES = ['', '.raw', '.raw.zst', '.img', '.qcow2'];

export interface LocatedImage {
  /** How the argument was understood, for messages. */
  what: string;
  path: string;
  /** The release whose installer this is, when the argument named a release. */
  release?: string;
}

/** The image format by its first bytes (qcow2 "QFI\xfb", zstd frame 28 b5 2f fd), else raw. */
export function formatFromMagic(head: Buffer): ImageFormat {
  if (head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zst';
  return 'raw';
}

export async function detectFormat(file: string): Promise<ImageFormat> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    return formatFromMagic(head);
  } finally {
    await fh.close();
  }
}

async function tryProject(projectDir: string): Promise<Project | undefined> {
  // Loaded only when the argument is not a file: burning a file path needs no project.
  const { loadProject } = await import('../config/project.js');
  try {
    return await loadProject(projectDir);
  } catch (err) {
    if (err instanceof UserError && err.code === 'E_NO_PROJECT') return undefined;
    throw err;
  }
}

/** A file path, else an artifact in store/builds/, else the installer of a release. */
export async function locateImage(arg: string, projectDir: string): Promise<LocatedImage> {
  if (existsSync(arg) && (await stat(arg)).isFile()) return { what: arg, path: resolve(arg) };
  const project = await tryProject(projectDir);
  if (!project) {
    throw new UserError(
      'E_BURN_SOURCE',
      `no image file ${arg}`,
      'give a raw, .raw.zst or .qcow2 file, or run inside an osbake project to name a build or a release',
    );
  }
  const builds = buildsDir(project.storeDir);
  if (!arg.includes('/')) {
    for (const suffix of ARTIFACT_SUFFIXES) {
      const p = join(builds, `${arg}${suffix}`);
      if (existsSync(p) && (await stat(p)).isFile()) return { what: `build ${basename(p)}`, path: p };
    }
  }
  const { loadReleases, releasesFile } = await import('../config/releases.js');
  const file = releasesFile(project);
  const release = (await loadReleases(file)).releases[arg];
  if (release) {
    const installer = release.artifacts.find((a) => a.kind === 'installer');
    if (!installer) {
      throw new UserError(
        'E_BURN_SOURCE',
        `release ${arg} has no installer artifact`,
        `build one (osbake build usb-installer --release ${arg}) and record it with osbake release ${arg}`,
      );
    }
    const p = join(project.storeDir, installer.path);
    if (!existsSync(p)) {
      throw new UserError(
        'E_BURN_SOURCE',
        `the installer of release ${arg} is not in the store: ${p}`,
        `fetch it, or check the release with osbake verify ${arg}`,
      );
    }
    return { what: `release ${arg} (installer ${installer.path})`, path: p, release: arg };
  }
  throw new UserError(
    'E_BURN_SOURCE',
    `no image file, build or release named ${arg}`,
    `give a file path, an artifact name in ${builds}, or a release recorded in ${file}`,
  );
}

export interface PreparedImage {
  what: string;
  /** The file to read: raw, or zstd-compressed raw. */
  image: string;
  compressed: boolean;
  bmap: Bmap;
  /** Where the bmap came from: a file, or "made now (fiemap)". */
  bmapFrom: string;
  /** Removes temporary files (the raw converted from a qcow2). */
  cleanup(): Promise<void>;
}

export interface PrepareOptions {
  log: Logger;
  say: (line: string) => void;
  progress?: ByteSink;
  /** Where temporary raw images go (default: the system temporary directory). */
  tempDir?: string;
  /** --bmap FILE: this block map instead of the one beside the image. */
  bmapFile?: string;
  /** --nobmap: copy every byte of the image (no bmap, no holes skipped), as bmaptool --nobmap. */
  noBmap?: boolean;
}

/** A block map of the whole image as one range with no checksum (--nobmap) (pure). */
export function wholeImageBmap(imageSize: number): Bmap {
  const blocksCount = Math.ceil(imageSize / BMAP_BLOCK_SIZE);
  return {
    version: BMAP_VERSION,
    imageSize,
    blockSize: BMAP_BLOCK_SIZE,
    blocksCount,
    mappedBlocksCount: blocksCount,
    ranges: blocksCount > 0 ? [{ first: 0, last: blocksCount - 1 }] : [],
  };
}

/** Where a bmap made for `image` is kept so the next burn finds it: beside the raw it describes. */
export function bmapKeepPath(image: string, format: ImageFormat): string | undefined {
  if (format === 'raw') return `${image}.bmap`;
  if (format === 'zst') return `${image.slice(0, -'.zst'.length)}.bmap`;
  return undefined;
}

/** The image and the options, checked before any work: not empty, --bmap/--nobmap that fit (pure but stat). */
async function checkImageOptions(image: string, o: PrepareOptions): Promise<ImageFormat> {
  if ((await stat(image)).size === 0) {
    throw new UserError(
      'E_EMPTY_IMAGE',
      `${image} is empty (0 bytes)`,
      'give the image file itself; was a copy cut short?',
    );
  }
  const format = await detectFormat(image);
  if (o.bmapFile && o.noBmap) {
    throw new UserError('E_USAGE', '--bmap and --nobmap exclude each other', 'give one of them');
  }
  if (o.bmapFile && !existsSync(o.bmapFile)) {
    throw new UserError('E_BMAP', `no bmap file ${o.bmapFile}`, "give the path of the image's .bmap file");
  }
  if (o.bmapFile && format === 'qcow2') {
    throw new UserError(
      'E_USAGE',
      `--bmap describes a raw image; ${basename(image)} is qcow2 (osbake converts it and maps it itself)`,
      'leave out --bmap for qcow2 images',
    );
  }
  return format;
}

/** A qcow2 converted, or a .zst without a bmap decompressed, to a raw image in `temp`. */
async function toTemporaryRaw(
  image: string,
  format: ImageFormat,
  temp: string,
  o: PrepareOptions,
): Promise<string> {
  const raw = join(temp, `${basename(image).replace(/\.(qcow2|zst)$/, '')}.raw`);
  if (format === 'qcow2') {
    o.say(`converting ${basename(image)} (qcow2) to a temporary raw image in ${temp}`);
    await run(['qemu-img', 'convert', '-O', 'raw', image, raw], { log: o.log, tag: 'qemu-img' });
  } else {
    o.say(
      o.noBmap
        ? `--nobmap: decompressing ${basename(image)} to ${temp}`
        : `no bmap beside ${basename(image)}: decompressing it to ${temp} to make one`,
    );
    await run(['zstd', '-dq', '--sparse', '-o', raw, '--', image], { log: o.log, tag: 'zstd' });
  }
  return raw;
}

/** The block map to write by: the whole image (--nobmap), a given or found one (checked), or one made now and kept. */
async function blockMapOf(
  located: LocatedImage,
  image: string,
  f: { format: ImageFormat; sourceFormat: ImageFormat; bmapFile: string | undefined; converted: boolean },
  o: PrepareOptions,
): Promise<{ bmap: Bmap; bmapFrom: string }> {
  if (o.noBmap) {
    return {
      bmap: wholeImageBmap((await stat(image)).size),
      bmapFrom: 'none (--nobmap: every byte is written)',
    };
  }
  if (f.bmapFile) {
    const bmap = await readBmap(f.bmapFile);
    if (f.format === 'raw') {
      const size = (await stat(image)).size;
      if (size !== bmap.imageSize) {
        throw new UserError(
          'E_BMAP',
          `${f.bmapFile} is for an image of ${bmap.imageSize} bytes, ${image} has ${size}`,
          'the bmap belongs to another image: delete it (osbake burn then makes one) or recreate it',
        );
      }
    }
    return { bmap, bmapFrom: f.bmapFile };
  }
  if (!f.converted)
    o.say(`no bmap beside ${basename(image)}: making one (data ranges by FIEMAP, SHA-256 per range)`);
  const made = await createBmap(image, o.log, o.progress);
  let bmapFrom = `made now (${made.method})`;
  const keep = bmapKeepPath(located.path, f.sourceFormat);
  if (keep) {
    try {
      await writeFileAtomically(keep, made.text);
      bmapFrom += `, kept as ${keep}`;
    } catch (err) {
      // A read-only or foreign directory: the burn goes on; the next one makes it again.
      o.log.warn({ err: String(err), keep }, 'could not keep the bmap beside the image');
      o.say(`note: could not keep the bmap as ${keep} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  return { bmap: made.bmap, bmapFrom };
}

/**
 * Make the image writable with a block map: convert qcow2, decompress a .zst without bmap, make
 * the bmap (and keep it beside the image, as bmaptool users keep theirs), or take --bmap FILE, or
 * map the whole image (--nobmap).
 */
export async function prepareImage(located: LocatedImage, o: PrepareOptions): Promise<PreparedImage> {
  let image = located.path;
  const sourceFormat = await checkImageOptions(image, o);
  let format = sourceFormat;
  let temp: string | undefined;
  const cleanup = async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  };
  try {
    let bmapFile = format === 'qcow2' || o.noBmap ? undefined : (o.bmapFile ?? findBmap(image));
    if (format === 'qcow2' || (format === 'zst' && !bmapFile)) {
      temp = await mkdtemp(join(o.tempDir ?? tmpdir(), 'osbake-burn-'));
      image = await toTemporaryRaw(image, format, temp, o);
      format = 'raw';
      bmapFile = undefined;
    }
    const { bmap, bmapFrom } = await blockMapOf(
      located,
      image,
      { format, sourceFormat, bmapFile, converted: temp !== undefined },
      o,
    );
    return { what: located.what, image, compressed: format === 'zst', bmap, bmapFrom, cleanup };
  } catch (err) {
    await cleanup();
    throw err instanceof UserError ? err : withContext(`preparing ${located.path}`, err);
  }
}
