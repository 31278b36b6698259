/**
 * The files `osbake serve --netboot` hands to nodes, taken out of release R's own USB stick image —
 * no second installer OS: the installer's kernel and initramfs (/boot on the stick's ext4 data
 * partition), the signed network chain (boot/netboot/), the payload's range list, checksums,
 * signature and image facts, and the payload itself: compressed as on the stick (payload.zst, one
 * zstd frame per piece, payload.pieces says where each is) — or, from a stick made before pieces,
 * unpacked back to back (payload.bin: range i starts where ranges 0..i-1 end). Read with debugfs
 * (no mount, no root), checked against the stick's SHA256SUMS, cached per stick SHA-256 in
 * <workDir>/cache/netboot/<sha>/ (made under a hidden name, one rename; touched on every use).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { fsyncPath } from '../config/atomic.js';
import type { Project } from '../config/project.js';
import {
  loadReleases,
  type Release,
  releasesFile,
  requireRelease,
  sortReleasesNewestFirst,
} from '../config/releases.js';
import { partitionExtents } from '../disk/loop.js';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import { disown, own } from '../fsx/owned.js';
import { checkPieces, parsePayloadRanges, parsePieces } from '../installer/payload.js';
import type { Logger } from '../log/logger.js';
import type { ProgressSink } from '../log/progress.js';
import { checkReleaseForBurn } from '../release/verify.js';

/** Files served under /netboot/<R>/ (nothing else there is). */
export const NETBOOT_FILES = [
  'vmlinuz',
  'initrd.img',
  'payload.zst',
  'payload.pieces',
  // A stick made before pieces: the payload unpacked (its installer fetches this).
  'payload.bin',
  'payload.ranges',
  'SHA256SUMS',
  'SHA256SUMS.asc',
  'image.txt',
  // The stick's shim and grubnetx64 (boot/netboot/): the Secure Boot network chain.
  'bootx64.efi',
  'grubx64.efi',
] as const;

export interface NetbootRelease {
  release: string;
  /** The cache entry holding NETBOOT_FILES (SHA256SUMS.asc only when the stick is signed). */
  dir: string;
  files: string[];
  stickSha256: string;
  /** The payload's build (image.txt build=). */
  build: string;
  ranges: number;
  /** Bytes a node fetches: payload.zst (pieces), or payload.bin (a stick made before pieces). */
  payloadBytes: number;
  /** payload.zst in pieces, or payload.bin unpacked. */
  payloadFile: 'payload.zst' | 'payload.bin';
  /** What was checked, for the banner. */
  checked: string;
}

/** The newest release (by date, then name) that records an installer, or undefined (pure). */
export function newestInstallerRelease(releases: Record<string, Release>): string | undefined {
  const withInstaller = Object.entries(releases)
    .filter(([, r]) => r.artifacts.some((a) => a.kind === 'installer'))
    .map(([name, release]) => ({ name, release }));
  return sortReleasesNewestFirst(withInstaller)[0]?.name;
}

/** SHA256SUMS → name → hex (pure). */
export function parseSha256Sums(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (r) m.set(r[2] as string, r[1] as string);
  }
  return m;
}

/** Byte offset of the stick's data partition (its second one), from sfdisk's JSON. */
async function dataPartitionOffset(stick: string, log: Logger, signal: AbortSignal): Promise<number> {
  const p = (await partitionExtents(stick, log, signal)).find((x) => x.number === 2);
  if (!p)
    throw new UserError(
      'E_NETBOOT',
      `${stick} has no data partition`,
      'is it an osbake usb-installer image?',
    );
  return p.offset;
}

export async function prepareNetboot(o: {
  project: Project;
  /** Release name; default the newest that records an installer. */
  release?: string;
  log: Logger;
  signal: AbortSignal;
  progress: (text: string) => void;
  /** Bytes, rate and ETA of the payload's unpacking. */
  bytes?: ProgressSink;
}): Promise<NetbootRelease> {
  const file = releasesFile(o.project);
  const all = await loadReleases(file);
  const releases = all.releases;
  const name = o.release ?? newestInstallerRelease(releases);
  if (!name) {
    throw new UserError(
      'E_NO_RELEASE',
      `no release in ${file} records an installer`,
      'build one (osbake build usb-installer --release R), record it (osbake release R), or name the release: --netboot R',
    );
  }
  const release = requireRelease(file, all, name);
  const installer = release.artifacts.find((a) => a.kind === 'installer');
  if (!installer) {
    throw new UserError(
      'E_NO_INSTALLER',
      `release ${name} records no installer`,
      `build it: osbake build usb-installer --release ${name}, then osbake release ${name}`,
    );
  }
  const cacheRoot = join(o.project.workDir, 'cache', 'netboot');
  const dir = join(cacheRoot, installer.sha256.slice(0, 32));
  const ready = existsSync(join(dir, 'payload.pieces')) || existsSync(join(dir, 'payload.bin'));
  // The release's signature always; the stick's SHA-256 only when its files are not cached yet
  // (the cache entry is named by that SHA-256 and was made from a stick that had it).
  o.progress(`checking release ${name}${ready ? '' : ' and its installer'}`);
  const checked = await checkReleaseForBurn(o.project.root, name, { installerChecksum: !ready });
  if (!ready) await extract(o, join(o.project.storeDir, installer.path), cacheRoot, dir);
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
  const files = NETBOOT_FILES.filter((f) => existsSync(join(dir, f)));
  const image = await readFile(join(dir, 'image.txt'), 'utf8');
  const ranges = parsePayloadRanges(await readFile(join(dir, 'payload.ranges'), 'utf8'));
  const payloadFile = existsSync(join(dir, 'payload.pieces')) ? 'payload.zst' : 'payload.bin';
  return {
    release: name,
    dir,
    files,
    stickSha256: installer.sha256,
    build: /^build=(.*)$/m.exec(image)?.[1] ?? '?',
    ranges: ranges.length,
    payloadBytes: (await stat(join(dir, payloadFile))).size,
    payloadFile,
    checked,
  };
}

/** The stick's files a network install serves: [path on the stick, name in the cache]. */
const STICK_FILES: [string, string][] = [
  ['/boot/vmlinuz', 'vmlinuz'],
  ['/boot/initrd.img', 'initrd.img'],
  ['/osbake/payload.zst', 'payload.zst'],
  ['/osbake/payload.ranges', 'payload.ranges'],
  ['/osbake/payload.pieces', 'payload.pieces'],
  ['/osbake/SHA256SUMS', 'SHA256SUMS'],
  ['/osbake/SHA256SUMS.asc', 'SHA256SUMS.asc'],
  ['/osbake/image.txt', 'image.txt'],
  ['/boot/netboot/bootx64.efi', 'bootx64.efi'],
  ['/boot/netboot/grubx64.efi', 'grubx64.efi'],
];
// Optional: a stick made before osbake carried the network chain has none (no Secure Boot
// over the network from it; iPXE still works).
const OPTIONAL_STICK_FILES = new Set(['SHA256SUMS.asc', 'bootx64.efi', 'grubx64.efi', 'payload.pieces']);

/** The stick's files dumped into tmp by debugfs (the partition opened inside the image: no loop device). */
async function dumpStickFiles(
  o: { log: Logger; signal: AbortSignal },
  stick: string,
  tmp: string,
): Promise<void> {
  const offset = await dataPartitionOffset(stick, o.log, o.signal);
  const script = STICK_FILES.map(([from, to]) => `dump ${from} ${join(tmp, to)}\n`).join('');
  await run(['debugfs', '-f', '-', `${stick}?offset=${offset}`], {
    log: o.log,
    signal: o.signal,
    input: script,
  });
  for (const [from, to] of STICK_FILES) {
    if (!OPTIONAL_STICK_FILES.has(to) && !existsSync(join(tmp, to))) {
      throw new UserError(
        'E_NETBOOT',
        `the stick ${stick} has no ${from}`,
        'is it an osbake usb-installer image? rebuild it with osbake build usb-installer',
      );
    }
  }
}

/** The payload and its lists against the stick's SHA256SUMS; the pieces against the ranges. */
async function checkStickPayload(tmp: string, stick: string): Promise<boolean> {
  const sums = parseSha256Sums(await readFile(join(tmp, 'SHA256SUMS'), 'utf8'));
  const pieces = existsSync(join(tmp, 'payload.pieces'));
  for (const f of ['payload.zst', 'payload.ranges', ...(pieces ? ['payload.pieces'] : [])]) {
    const want = sums.get(f);
    const got = await sha256File(join(tmp, f));
    if (want !== got) {
      throw new UserError(
        'E_VERIFY',
        `${f} on the stick ${stick} does not match its SHA256SUMS`,
        'the stick image is damaged: rebuild it, then osbake release again',
      );
    }
  }
  if (pieces) {
    // Served as it is: each node fetches the compressed pieces and decompresses them itself.
    checkPieces(
      parsePayloadRanges(await readFile(join(tmp, 'payload.ranges'), 'utf8')),
      parsePieces(await readFile(join(tmp, 'payload.pieces'), 'utf8')),
      (await stat(join(tmp, 'payload.zst'))).size,
      stick,
    );
  }
  return pieces;
}

async function extract(
  o: { log: Logger; signal: AbortSignal; progress: (text: string) => void; bytes?: ProgressSink },
  stick: string,
  cacheRoot: string,
  dir: string,
): Promise<void> {
  await mkdir(cacheRoot, { recursive: true });
  // A hidden partial name (config/atomic.ts): osbake clean removes it once its process is gone.
  const tmp = join(cacheRoot, `.${dir.split('/').at(-1)}.partial-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  own(tmp, 'temp');
  try {
    o.progress('reading the installer and payload out of the stick (debugfs)');
    await dumpStickFiles(o, stick, tmp);
    if (!(await checkStickPayload(tmp, stick))) await unpackPayload(o, tmp, stick);
    for (const f of NETBOOT_FILES) if (existsSync(join(tmp, f))) await fsyncPath(join(tmp, f));
    const mine = await rename(tmp, dir).then(
      () => true,
      async (err: NodeJS.ErrnoException) => {
        // Another osbake serve made the same entry meanwhile: theirs is as good.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
        return false;
      },
    );
    disown(tmp);
    if (mine) own(dir, 'cache');
    await fsyncPath(cacheRoot, true);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    disown(tmp);
    throw err;
  }
}

/** A stick made before pieces: payload.zst unpacked once into payload.bin (its installer fetches that). */
async function unpackPayload(
  o: { log: Logger; signal: AbortSignal; progress: (text: string) => void; bytes?: ProgressSink },
  tmp: string,
  stick: string,
): Promise<void> {
  const { log, signal } = o;
  const ranges = parsePayloadRanges(await readFile(join(tmp, 'payload.ranges'), 'utf8'));
  const total = ranges.reduce((s, r) => s + r.length, 0);
  o.progress('unpacking the payload (zstd)');
  // Bytes and ETA: payload.bin's size, looked at twice a second, against the ranges' total.
  o.bytes?.start('payload.bin', total);
  let seen = 0;
  const look = setInterval(() => {
    stat(join(tmp, 'payload.bin')).then(
      (st) => {
        if (st.size > seen) o.bytes?.add(st.size - seen);
        seen = Math.max(seen, st.size);
      },
      () => undefined,
    );
  }, 500);
  try {
    await run(['zstd', '-q', '-d', '-f', join(tmp, 'payload.zst'), '-o', join(tmp, 'payload.bin')], {
      log,
      signal,
    });
  } finally {
    clearInterval(look);
    o.bytes?.end();
  }
  await rm(join(tmp, 'payload.zst'));
  const size = (await stat(join(tmp, 'payload.bin'))).size;
  if (size !== total) {
    throw new UserError(
      'E_VERIFY',
      `the payload of ${stick} holds ${size} bytes, its ranges ${total}`,
      'the stick image is damaged: rebuild it',
    );
  }
}
