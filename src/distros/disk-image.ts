/**
 * Assemble a BIOS-bootable raw disk from a root filesystem tarball without a VM:
 * MBR with one ext4 partition, extlinux installed from the host, root=UUID written explicitly
 * (no udev here, so no /dev/disk/by-uuid). Loop devices and mounts are always released.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';

/** Programs vanillaDiskFromTar runs (a distro's vanillaTools adds its bootstrapper). */
export const DISK_TOOLS = [
  'extlinux',
  'sfdisk',
  'losetup',
  'partx',
  'mkfs.ext4',
  'blkid',
  'mount',
  'qemu-img',
  'tar',
];

export interface DiskAssembly {
  rootfsTar: string;
  rawDisk: string;
  /** Size like 8G or 4096M. */
  size: string;
  hostname: string;
  kernelArgs: string;
  log: Logger;
  signal: AbortSignal;
  progress: (text: string) => void;
}

export function sizeToBytes(size: string): number {
  const m = /^(\d+)([MG])$/.exec(size);
  if (!m) throw new Error(`bad size ${size}`);
  return Number(m[1]) * (m[2] === 'G' ? 1024 ** 3 : 1024 ** 2);
}

export function extlinuxConfig(rootUuid: string, kernelArgs: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT linux',
    'TIMEOUT 10',
    'PROMPT 0',
    'LABEL linux',
    '  LINUX /vmlinuz',
    '  INITRD /initrd.img',
    `  APPEND root=UUID=${rootUuid} ro ${kernelArgs}`,
    '',
  ].join('\n');
}

export function fstab(rootUuid: string): string {
  return `# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`;
}

/** Cleanups registered while assembling, run in reverse order whatever happens. */
export class CleanupStack {
  private readonly items: { what: string; fn: () => Promise<unknown> }[] = [];
  push(what: string, fn: () => Promise<unknown>): void {
    this.items.push({ what, fn });
  }
  async runAll(log: Logger): Promise<void> {
    while (this.items.length > 0) {
      const item = this.items.pop();
      if (!item) break;
      try {
        await item.fn();
      } catch (err) {
        log.error({ err: String(err) }, `cleanup failed: ${item.what}`);
        process.stderr.write(`osbake: warning: cleanup failed (${item.what}): ${String(err)}\n`);
      }
    }
  }
}

export async function waitForPath(path: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} did not appear (is devtmpfs mounted on /dev?)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function assembleBiosDisk(a: DiskAssembly): Promise<void> {
  const { log, signal } = a;
  const r = (argv: string[]) => run(argv, { log, signal });
  // Cleanups must run even after an abort, so they do not take the signal.
  const rc = (argv: string[]) => run(argv, { log });
  const cleanups = new CleanupStack();
  const mnt = `${a.rawDisk}.mnt`;
  try {
    a.progress('partitioning disk');
    await rm(a.rawDisk, { force: true });
    await writeFile(a.rawDisk, '');
    await truncate(a.rawDisk, sizeToBytes(a.size));
    await run(['sfdisk', '--quiet', a.rawDisk], {
      log,
      signal,
      input: 'label: dos\nstart=2048, type=83, bootable\n',
    });

    const loop = await capture(['losetup', '--find', '--show', a.rawDisk], { log, signal });
    cleanups.push(`detach ${loop}`, () => rc(['losetup', '--detach', loop]));
    // The kernel may already have scanned the partitions (partscan) or not (FACTS: -P is not
    // enough here): --update adds what is missing either way. devtmpfs then makes the node.
    await r(['partx', '--update', loop]);
    cleanups.push(`remove partitions of ${loop}`, () =>
      rc(['partx', '--delete', loop]).catch(() => undefined),
    );
    const part = `${loop}p1`;
    await waitForPath(part, 5000);

    a.progress('making ext4 file system');
    // orphan_file and metadata_csum_seed are newer than what extlinux 6.04 reads.
    await r(['mkfs.ext4', '-q', '-L', 'root', '-O', '^orphan_file,^metadata_csum_seed', part]);
    const uuid = await capture(['blkid', '-s', 'UUID', '-o', 'value', part], { log, signal });

    await mkdir(mnt, { recursive: true });
    await r(['mount', part, mnt]);
    cleanups.push(`unmount ${mnt}`, async () => {
      await rc(['umount', mnt]);
      await rm(mnt, { recursive: true, force: true });
    });

    a.progress('copying root file system');
    await r(['tar', '-xpf', a.rootfsTar, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', mnt]);
    await writeFile(join(mnt, 'etc/fstab'), fstab(uuid));
    await writeFile(join(mnt, 'etc/hostname'), `${a.hostname}\n`);
    await writeFile(
      join(mnt, 'etc/hosts'),
      `127.0.0.1\tlocalhost\n127.0.1.1\t${a.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    );

    a.progress('installing extlinux boot loader');
    await mkdir(join(mnt, 'boot/extlinux'), { recursive: true });
    await writeFile(join(mnt, 'boot/extlinux/extlinux.conf'), extlinuxConfig(uuid, a.kernelArgs));
    await r(['extlinux', '--install', join(mnt, 'boot/extlinux')]);
    await r(['sync', '-f', mnt]);
  } finally {
    await cleanups.runAll(log);
  }
  await r([
    'dd',
    `if=${SYSLINUX_MBR}`,
    `of=${a.rawDisk}`,
    'bs=440',
    'count=1',
    'conv=notrunc,fsync',
    'status=none',
  ]);
}

/** A root file system tarball → the vanilla disk as qcow2 at dest (raw and tar removed on the way). */
export async function vanillaDiskFromTar(
  o: Omit<DiskAssembly, 'rawDisk'> & { workDir: string; dest: string; echo?: boolean },
): Promise<void> {
  const raw = join(o.workDir, 'disk.raw');
  await assembleBiosDisk({ ...o, rawDisk: raw });
  await rm(o.rootfsTar, { force: true });
  o.progress('converting raw disk to qcow2');
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, o.dest], {
    log: o.log,
    signal: o.signal,
    echo: o.echo,
  });
  await rm(raw, { force: true });
}
