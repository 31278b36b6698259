/**
 * Assemble the USB stick image on the host: partition table, FAT ESP written with mtools (vfat
 * cannot be mounted here), ext4 data partition populated with `mkfs.ext4 -d` (no mount), extlinux
 * installed through one loop device on that partition, syslinux's MBR. Loop devices and mounts
 * are always released.
 */
import { mkdir, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFat } from '../disk/fat.js';
import { attachImage } from '../disk/loop.js';
import { CleanupStack, SYSLINUX_MBR, writeEspFiles } from '../distros/disk-image.js';
import { type BootChain, espFiles } from '../distros/disk-layout.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import {
  extlinuxInstallerConfig,
  grubInstallerConfig,
  planStickLayout,
  type StickLayout,
  sfdiskScript,
} from './stick-layout.js';

export interface StickAssembly {
  /** Directory with the data partition's files (boot/ is added here). */
  content: string;
  kernel: string;
  initrd: string;
  /** The signed UEFI chain (shim, GRUB, MokManager) at bootChain's paths under chainRoot. */
  bootChain: BootChain;
  chainRoot: string;
  /** shim and grubnetx64 for a Secure Boot network boot: on the data partition's boot/netboot/. */
  netChain?: { shim: string; grub: string };
  label: string;
  kernelArgs: string;
  out: string;
  work: string;
  log: Logger;
  signal: AbortSignal;
  progress: (t: string) => void;
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

export async function assembleStick(a: StickAssembly): Promise<StickLayout> {
  const { log, signal } = a;
  const r = (argv: string[], extra: { input?: string } = {}) => run(argv, { log, signal, ...extra });
  const rc = (argv: string[]) => run(argv, { log });

  a.progress('boot files');
  const boot = join(a.content, 'boot');
  await mkdir(join(boot, 'extlinux'), { recursive: true });
  await r(['cp', a.kernel, join(boot, 'vmlinuz')]);
  await r(['cp', a.initrd, join(boot, 'initrd.img')]);
  await writeFile(join(boot, 'extlinux/extlinux.conf'), extlinuxInstallerConfig(a.kernelArgs));
  if (a.netChain) {
    // Not used by the stick itself: osbake serve --netboot hands them out over TFTP (the release's
    // own signed chain, checked with the stick's SHA-256).
    await mkdir(join(boot, 'netboot'), { recursive: true });
    await r(['cp', a.netChain.shim, join(boot, 'netboot', 'bootx64.efi')]);
    await r(['cp', a.netChain.grub, join(boot, 'netboot', 'grubx64.efi')]);
  }
  await mkdir(join(a.content, 'logs'), { recursive: true });

  const layout = planStickLayout(await duBytes(a.content));
  await rm(a.out, { force: true });
  await writeFile(a.out, '');
  await truncate(a.out, layout.totalBytes);
  await r(['sfdisk', '--quiet', a.out], { input: sfdiskScript(layout) });

  a.progress('EFI system partition (signed shim and GRUB, mtools)');
  await makeFat({
    image: a.out,
    offset: layout.esp.offset,
    size: layout.esp.size,
    label: 'OSBAKE-EFI',
    volumeId: STICK_ESP_ID,
    log,
    signal,
  });
  await writeEspFiles(
    `${a.out}@@${layout.esp.offset}`,
    espFiles(a.bootChain, grubInstallerConfig(a.label, a.kernelArgs), false),
    a.chainRoot,
    join(a.work, 'esp.cfg'),
    log,
    signal,
  );

  a.progress('ext4 data partition');
  await r(dataPartitionMkfsArgv(a.label, layout, a.content, a.out));

  a.progress('extlinux (BIOS)');
  const cleanups = new CleanupStack();
  const mnt = join(a.work, 'mnt');
  try {
    // The whole disk, then its partitions: extlinux records the partition's start sector (from
    // sysfs), which a loop device made with --offset would report as 0.
    const disk = await attachImage(a.out, { log, signal });
    cleanups.push(`detach ${disk.device}`, () => disk.detach());
    const part = disk.partitions.get(2);
    if (!part) throw new Error(`${a.out} has no partition 2`);
    await mkdir(mnt, { recursive: true });
    await r(['mount', '-t', 'ext4', part, mnt]);
    cleanups.push(`unmount ${mnt}`, async () => {
      await rc(['umount', mnt]);
      await rm(mnt, { recursive: true, force: true });
    });
    await r(['extlinux', '--install', join(mnt, 'boot/extlinux')]);
    await r(['sync', '-f', mnt]);
  } finally {
    await cleanups.runAll(log);
  }
  await r(['dd', `if=${SYSLINUX_MBR}`, `of=${a.out}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
  return layout;
}

/** mkfs.ext4 of the stick's data partition from a directory tree, inside the image (pure). */
export function dataPartitionMkfsArgv(
  label: string,
  layout: StickLayout,
  content: string,
  out: string,
): string[] {
  return [
    'mkfs.ext4',
    '-q',
    '-F',
    '-L',
    label,
    '-m',
    '0',
    '-i',
    String(MIB_INODE_RATIO),
    '-b',
    '4096',
    '-J',
    'size=4',
    // orphan_file and metadata_csum_seed are newer than what extlinux 6.04 reads.
    '-O',
    '^orphan_file,^metadata_csum_seed,^resize_inode',
    '-E',
    `offset=${layout.data.offset}`,
    '-d',
    content,
    out,
    `${layout.data.size / 1024}k`,
  ];
}

/** The stick ESP's FAT volume id (fixed: the same inputs give the same stick). */
const STICK_ESP_ID = '05BA4E01';

/** One inode per MiB: the data partition holds few, large files. */
const MIB_INODE_RATIO = 2 ** 20;
