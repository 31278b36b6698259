/**
 * Same inputs → same bytes, for the chroot builder. A file system that was mounted and changed
 * (dpkg, Ansible) is not reproducible: block allocation, inode times and the journal depend on the
 * run. So after the playbook the root's tree is normalised (the volatile list below, times clamped
 * to SOURCE_DATE_EPOCH) and the root file system is made again from that tree without mounting it
 * (`mkfs.ext4 -d`, entries in sorted order, E2FSPROGS_FAKE_TIME, the vanilla root's UUID as UUID and
 * directory hash seed); the times mkfs copies from the tree that cannot be set there (ctime, atime)
 * are then set with debugfs. GPT, BIOS boot partition and ESP come unchanged from the vanilla disk.
 */
import { lstat, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attachExtent, partitionExtents } from '../../disk/loop.js';
import { UserError } from '../../errors.js';
import { capture, run } from '../../exec/run.js';
import { makeDirsSync } from '../../fsx/input.js';
import type { Logger } from '../../log/logger.js';

/** GPT type of a Linux file system partition (the root of osbake's disks). */
const LINUX_FS_GPT = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/**
 * What differs between two runs of the same playbook and is not part of the image's function
 * (documented in README "Reproducible builds"): removed, emptied or truncated before the root file
 * system is made. Paths are relative to the root; a trailing "/*" empties a directory.
 */
export const VOLATILE = {
  /** Caches rebuilt on demand, and state made fresh at first boot. */
  remove: [
    'var/cache/ldconfig/aux-cache',
    'var/lib/systemd/random-seed',
    'var/lib/dbus/machine-id',
    'var/cache/apt/pkgcache.bin',
    'var/cache/apt/srcpkgcache.bin',
    'var/cache/debconf/config.dat-old',
    'var/cache/debconf/templates.dat-old',
    'var/lib/dpkg/status-old',
    'var/lib/dpkg/diversions-old',
    'var/lib/dpkg/statoverride-old',
    'root/.ansible',
    'root/.cache',
    'root/.lesshst',
    'root/.bash_history',
  ],
  /** Directories whose content goes (the directory stays). */
  empty: ['tmp', 'var/tmp', 'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial'],
  /** Regular files below these are truncated to nothing (logs carry the run's dates). */
  truncateBelow: ['var/log'],
  /** Directories of this name are removed wherever they are (Python recompiles on demand). */
  removeDirsNamed: ['__pycache__'],
  /** Written empty: the machine's identity is made at first boot. */
  emptyFiles: ['etc/machine-id'],
} as const;

/** /etc/shadow with every "last changed" day after the epoch's day clamped to it (pure). */
export function clampShadowDays(text: string, sourceDateEpoch: number): string {
  const day = Math.floor(sourceDateEpoch / 86_400);
  return text
    .split('\n')
    .map((line) => {
      const f = line.split(':');
      if (f.length < 3 || !/^\d+$/.test(f[2] ?? '')) return line;
      if (Number(f[2]) > day) f[2] = String(day);
      return f.join(':');
    })
    .join('\n');
}

/** Inode numbers in use, from dumpe2fs's per-group "Free inodes:" lists (pure). */
export function usedInodes(dumpe2fs: string): number[] {
  const count = Number(/^Inode count:\s+(\d+)/m.exec(dumpe2fs)?.[1] ?? 0);
  const free = new Uint8Array(count + 1);
  for (const m of dumpe2fs.matchAll(/^\s*Free inodes: ?(.*)$/gm)) {
    for (const part of (m[1] ?? '').split(',')) {
      const r = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
      if (!r) continue;
      const a = Number(r[1]);
      const b = Number(r[2] ?? r[1]);
      for (let i = a; i <= b && i <= count; i++) free[i] = 1;
    }
  }
  const used: number[] = [];
  // Inodes 1 and 3-10 are reserved (no times of their own); 2 is the root directory.
  for (let i = 2; i <= count; i++) if (!free[i] && (i === 2 || i >= 11)) used.push(i);
  return used;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

async function walk(dir: string, visit: (path: string, isDir: boolean) => Promise<boolean>): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p);
    const descend = await visit(p, st.isDirectory());
    if (descend && st.isDirectory()) await walk(p, visit);
  }
}

/** Apply VOLATILE and the shadow clamp to a mounted root (the tree mkfs will copy). */
export async function normalizeTree(root: string, sourceDateEpoch: number): Promise<void> {
  for (const p of VOLATILE.remove) await rm(join(root, p), { recursive: true, force: true });
  for (const d of VOLATILE.empty) {
    const dir = join(root, d);
    if (!(await exists(dir))) continue;
    for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
  }
  for (const d of VOLATILE.truncateBelow) {
    const dir = join(root, d);
    if (!(await exists(dir))) continue;
    await walk(dir, async (p, isDir) => {
      if (!isDir && (await lstat(p)).isFile()) await truncate(p, 0);
      return true;
    });
  }
  await walk(root, async (p, isDir) => {
    if (!isDir) return false;
    if ((VOLATILE.removeDirsNamed as readonly string[]).includes(p.slice(p.lastIndexOf('/') + 1))) {
      await rm(p, { recursive: true, force: true });
      return false;
    }
    return true;
  });
  for (const f of VOLATILE.emptyFiles) {
    if (await exists(join(root, f))) await writeFile(join(root, f), '');
  }
  for (const f of ['etc/shadow', 'etc/shadow-']) {
    const p = join(root, f);
    if (!(await exists(p))) continue;
    const text = await readFile(p, 'utf8');
    const clamped = clampShadowDays(text, sourceDateEpoch);
    if (clamped !== text) await writeFile(p, clamped);
  }
}

export interface ReproducibleRootOptions {
  /** The build's raw disk (not attached, nothing mounted). */
  rawDisk: string;
  workDir: string;
  sourceDateEpoch: number;
  log: Logger;
  signal: AbortSignal;
  progress: (text: string) => void;
}

type FakeTimeEnv = Record<string, string>;

/**
 * The mounted root normalised (volatile files, every time clamped to SOURCE_DATE_EPOCH), then a
 * new ext4 made from its tree in `fresh`, with the old one's UUID, hash seed and label.
 */
async function makeExt4FromTree(
  o: ReproducibleRootOptions,
  old: { uuid: string; label: string },
  mnt: string,
  fresh: string,
  size: number,
  env: FakeTimeEnv,
): Promise<void> {
  const { log, signal } = o;
  const sde = String(o.sourceDateEpoch);
  const { uuid, label } = old;
  o.progress('normalising the tree (volatile files, times)');
  await normalizeTree(mnt, o.sourceDateEpoch);
  await run(
    ['find', mnt, '-xdev', '-newermt', `@${sde}`, '-exec', 'touch', '-h', '-d', `@${sde}`, '{}', '+'],
    {
      log,
      signal,
    },
  );
  await run(['mount', '-o', 'remount,ro', mnt], { log, signal });
  o.progress('making the root file system from the tree (mkfs.ext4 -d)');
  await rm(fresh, { force: true });
  await writeFile(fresh, '');
  await truncate(fresh, size);
  await run(
    [
      ...['mkfs.ext4', '-q', '-F', '-d', mnt, '-U', uuid, '-E', `hash_seed=${uuid}`],
      ...(label ? ['-L', label] : []),
      // As the vanilla disk's root: features GRUB 2.06 reads.
      ...['-O', '^orphan_file,^metadata_csum_seed', '-b', '4096', fresh],
    ],
    { log, signal, env },
  );
}

/** The times mkfs took from the tree and the tree could not be given (ctime, atime) set; checked. */
async function clampInodeTimes(o: ReproducibleRootOptions, fresh: string, env: FakeTimeEnv): Promise<void> {
  const { log, signal } = o;
  const sde = String(o.sourceDateEpoch);
  const used = usedInodes(await capture(['dumpe2fs', fresh], { log, signal, env }));
  const cmds = used.flatMap((i) => [`sif <${i}> ctime @${sde}`, `sif <${i}> atime @${sde}`]);
  const cmdFile = join(o.workDir, 'debugfs-times.cmd');
  await writeFile(cmdFile, `${cmds.join('\n')}\n`);
  // debugfs echoes every command on stdout (tens of thousands): only its errors are kept.
  await run(['sh', '-c', 'exec debugfs -w -f "$1" "$2" >/dev/null', 'sh', cmdFile, fresh], {
    log,
    signal,
    env,
  });
  await run(['e2fsck', '-f', '-n', fresh], { log, signal, env });
}

/** QEMU's options for bytes [offset, offset + size) of a raw file (pure; a comma in a path is doubled). */
export function rawRangeOpts(file: string, offset: number, size: number): string {
  return `driver=raw,offset=${offset},size=${size},file.driver=file,file.filename=${file.replaceAll(',', ',,')}`;
}

/** The new file system into the disk: the partition's old bytes punched out first, so none survive. */
async function replacePartition(
  o: ReproducibleRootOptions,
  fresh: string,
  root: { offset: number; size: number },
): Promise<void> {
  const { log, signal } = o;
  await run(
    ['fallocate', '--punch-hole', '--offset', String(root.offset), '--length', String(root.size), o.rawDisk],
    { log, signal },
  );
  // Only the file system's data is copied: qemu-img reads the sparse file's extents (dd read all
  // of the partition's holes as zeros: 17 s for 8 GiB here, against 1 s), into the punched range.
  const size = (await stat(fresh)).size;
  await run(
    [
      ...['qemu-img', 'convert', '-n', '--target-is-zero', '-f', 'raw', fresh],
      ...['--target-image-opts', rawRangeOpts(o.rawDisk, root.offset, size)],
    ],
    { log, signal },
  );
  await rm(fresh, { force: true });
}

/**
 * Normalise the root's tree and make its ext4 again from it, in place in rawDisk. Returns the
 * root partition's number; undefined (and says so) for a root that is not ext4, left as it is.
 */
export async function rebuildRootFromTree(o: ReproducibleRootOptions): Promise<number | undefined> {
  const { log, signal } = o;
  const sde = String(o.sourceDateEpoch);
  const env = { E2FSPROGS_FAKE_TIME: sde, SOURCE_DATE_EPOCH: sde, LC_ALL: 'C' };
  const parts = await partitionExtents(o.rawDisk, log, signal);
  const root = parts.filter((p) => p.type.toUpperCase() === LINUX_FS_GPT).at(-1) ?? parts.at(-1);
  if (!root)
    throw new UserError('E_REPRODUCIBLE', `${o.rawDisk} has no partitions`, 'check the vanilla disk');
  const mnt = join(o.workDir, 'root-tree');
  const fresh = join(o.workDir, 'root.ext4');
  makeDirsSync(mnt);
  const dev = await attachExtent(o.rawDisk, root, { log, signal });
  let mounted = false;
  try {
    const probe = (tag: string) =>
      capture(['blkid', '-p', '-s', tag, '-o', 'value', dev.device], { log, signal }).then((s) => s.trim());
    const type = await probe('TYPE');
    if (type !== 'ext4') {
      o.progress(`not reproducible: the root file system is ${type || 'unknown'} (only ext4 is remade)`);
      return undefined;
    }
    const old = { uuid: await probe('UUID'), label: await probe('LABEL') };
    await run(['mount', dev.device, mnt], { log, signal });
    mounted = true;
    await makeExt4FromTree(o, old, mnt, fresh, root.size, env);
  } finally {
    if (mounted) await run(['umount', mnt], { log }).catch(() => undefined);
    await dev.detach();
    await rm(mnt, { recursive: true, force: true });
  }
  await clampInodeTimes(o, fresh, env);
  await replacePartition(o, fresh, root);
  return root.number;
}

/** Is a path (relative to the root, "/"-separated) one of the VOLATILE list's? (pure) */
export function isVolatile(path: string): boolean {
  const under = (dir: string) => path === dir || path.startsWith(`${dir}/`);
  if (VOLATILE.remove.some(under)) return true;
  if (VOLATILE.empty.some((d) => path.startsWith(`${d}/`))) return true;
  if (VOLATILE.truncateBelow.some((d) => path.startsWith(`${d}/`))) return true;
  if (path.split('/').some((s) => (VOLATILE.removeDirsNamed as readonly string[]).includes(s))) return true;
  return (
    (VOLATILE.emptyFiles as readonly string[]).includes(path) ||
    path === 'etc/shadow' ||
    path === 'etc/shadow-'
  );
}
