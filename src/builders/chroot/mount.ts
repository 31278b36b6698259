/**
 * A disk image's root file system mounted for a chroot: loop device with its partitions, the root
 * partition mounted, /proc /sys /dev /dev/pts bound, a tmpfs /run holding a resolv.conf for the
 * build, and the distro's guard files (Debian: policy-rc.d) so no service starts. Everything is
 * undone in reverse by `release()`, which is safe to call twice and after a partial setup; before
 * unmounting it ends every process whose root is inside the mount (a daemon a package started).
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { attachImage } from '../../disk/loop.js';
import type { OverlayFile } from '../../distros/vanilla-overlay.js';
import { capture, run } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';

export interface BindMount {
  /** Mount point relative to the root. */
  target: string;
  /** mount(8) arguments before the target. */
  args: string[];
}

/** The API file systems a chroot needs (pure, in mount order). */
export function chrootMounts(): BindMount[] {
  return [
    { target: 'proc', args: ['-t', 'proc', 'proc'] },
    { target: 'sys', args: ['-t', 'sysfs', 'sysfs'] },
    { target: 'dev', args: ['--bind', '/dev'] },
    { target: 'dev/pts', args: ['--bind', '/dev/pts'] },
    { target: 'run', args: ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'tmpfs'] },
  ];
}

/**
 * Where a resolv.conf must be written so that the chroot's /etc/resolv.conf resolves (pure):
 * a symlink (absolute or relative) is followed inside the root; a link into /run lands on the
 * tmpfs; anything else means the file itself is replaced for the build and restored after.
 */
export function resolvConfTarget(linkTarget: string | undefined): { path: string; replace: boolean } {
  if (linkTarget === undefined) return { path: 'etc/resolv.conf', replace: true };
  const abs = posix.resolve('/etc', linkTarget);
  if (abs.startsWith('/run/')) return { path: abs.slice(1), replace: false };
  return { path: 'etc/resolv.conf', replace: true };
}

export interface ProbedPartition {
  device: string;
  type?: string;
  label?: string;
}

/** The root partition (pure): the one labelled root, else the last Linux file system. */
export function pickRootPartition(parts: ProbedPartition[]): ProbedPartition | undefined {
  const linux = parts.filter((p) => p.type && ['ext4', 'ext3', 'ext2', 'xfs', 'btrfs'].includes(p.type));
  return linux.find((p) => p.label === 'root') ?? linux.at(-1);
}

/** PIDs whose root directory is `root` or below it (processes running inside the chroot). */
export async function processesRootedIn(root: string): Promise<number[]> {
  const real = resolve(root);
  const pids: number[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const r = await readlink(`/proc/${pid}/root`).catch(() => undefined);
    if (r && (r === real || r.startsWith(`${real}/`))) pids.push(Number(pid));
  }
  return pids;
}

async function killRootedIn(root: string, log: Logger): Promise<number> {
  let pids = await processesRootedIn(root);
  if (pids.length === 0) return 0;
  log.warn({ pids }, 'ending processes left inside the chroot');
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    for (const p of pids) {
      try {
        process.kill(p, sig);
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 20 && pids.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pids = await processesRootedIn(root);
    }
    if (pids.length === 0) break;
  }
  return pids.length;
}

export interface ChrootMount {
  root: string;
  loop: string;
  /** fstrim the root file system (free blocks become holes in the raw file). */
  trim(): Promise<void>;
  /** Undo everything (idempotent). */
  release(): Promise<void>;
}

type Undo = { what: string; fn: () => Promise<unknown> }[];

/** The disk's Linux root partition, by blkid's probe of each partition of the attached disk. */
async function findRootPartition(
  partitions: Iterable<[number, string]>,
  rawDisk: string,
  log: Logger,
): Promise<ProbedPartition> {
  const parts: ProbedPartition[] = [];
  for (const [, device] of [...partitions].sort((a, b) => a[0] - b[0])) {
    const out = await capture(['blkid', '-p', '-o', 'export', device], { log, okCodes: [2] }).catch(() => '');
    const kv = Object.fromEntries(out.split('\n').map((l) => l.split('=', 2) as [string, string]));
    parts.push({ device, type: kv.TYPE, label: kv.LABEL });
  }
  const rootPart = pickRootPartition(parts);
  if (!rootPart) throw new Error(`${rawDisk} has no Linux root partition (found: ${JSON.stringify(parts)})`);
  return rootPart;
}

/** A resolv.conf for the build's package downloads (the image's own may point into /run); undone after. */
async function placeResolvConf(root: string, undo: Undo): Promise<void> {
  const etcResolv = join(root, 'etc/resolv.conf');
  const st = await lstat(etcResolv).catch(() => undefined);
  const dest = resolvConfTarget(st?.isSymbolicLink() ? await readlink(etcResolv) : undefined);
  const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => 'nameserver 127.0.0.1\n');
  const destPath = join(root, dest.path);
  if (dest.replace && st) {
    await rename(etcResolv, `${etcResolv}.osbake-orig`);
    undo.push({
      what: 'restore /etc/resolv.conf',
      fn: async () => {
        await rm(etcResolv, { force: true });
        await rename(`${etcResolv}.osbake-orig`, etcResolv);
      },
    });
  } else if (dest.replace) {
    undo.push({ what: 'remove /etc/resolv.conf', fn: () => rm(etcResolv, { force: true }) });
  }
  await mkdir(dirname(destPath), { recursive: true });
  await writeFile(destPath, hostResolv);
}

/** The distro's guard files (e.g. policy-rc.d: no service starts in the chroot), the originals put back after. */
async function placeGuards(root: string, guards: Record<string, OverlayFile>, undo: Undo): Promise<void> {
  for (const [rel, file] of Object.entries(guards)) {
    const p = join(root, rel);
    const had = existsSync(p);
    if (had) await rename(p, `${p}.osbake-orig`);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, file.content, { mode: file.mode });
    undo.push({
      what: `remove ${rel}`,
      fn: async () => {
        await rm(p, { force: true });
        if (had) await rename(`${p}.osbake-orig`, p);
      },
    });
  }
}

export async function mountChroot(o: {
  rawDisk: string;
  root: string;
  guards: Record<string, OverlayFile>;
  log: Logger;
  signal: AbortSignal;
}): Promise<ChrootMount> {
  const { log } = o;
  const undo: Undo = [];
  const rc = (argv: string[]) => run(argv, { log });
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await killRootedIn(o.root, log);
    while (undo.length > 0) {
      const u = undo.pop();
      if (!u) break;
      try {
        await u.fn();
      } catch (err) {
        log.error({ err: String(err) }, `chroot cleanup failed: ${u.what}`);
        process.stderr.write(`osbake: warning: cleanup failed (${u.what}): ${String(err)}\n`);
      }
    }
  };
  const umount = async (target: string) => {
    try {
      await rc(['umount', target]);
    } catch {
      // Busy: something still runs there; end it, then detach lazily as a last resort.
      await killRootedIn(o.root, log);
      await rc(['umount', target]).catch(() => rc(['umount', '--lazy', target]));
    }
  };
  try {
    const disk = await attachImage(o.rawDisk, { log, signal: o.signal });
    undo.push({ what: `detach ${disk.device}`, fn: () => disk.detach() });
    const rootPart = await findRootPartition(disk.partitions, o.rawDisk, log);
    await mkdir(o.root, { recursive: true });
    await run(['mount', rootPart.device, o.root], { log, signal: o.signal });
    undo.push({
      what: `unmount ${o.root}`,
      fn: async () => {
        await umount(o.root);
        await rm(o.root, { recursive: true, force: true });
      },
    });
    for (const m of chrootMounts()) {
      const target = join(o.root, m.target);
      await mkdir(target, { recursive: true });
      await run(['mount', ...m.args, target], { log, signal: o.signal });
      undo.push({ what: `unmount ${target}`, fn: () => umount(target) });
    }
    await placeResolvConf(o.root, undo);
    await placeGuards(o.root, o.guards, undo);
    return {
      root: o.root,
      loop: disk.device,
      async trim() {
        await run(['fstrim', '--verbose', o.root], { log, okCodes: [1] });
      },
      release,
    };
  } catch (err) {
    await release();
    throw err;
  }
}
