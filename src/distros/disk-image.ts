/**
 * Assemble the vanilla disk from a root file system tarball without a VM: the hybrid GPT layout
 * of disk-layout.ts (BIOS boot partition + ESP + root last), GRUB for BIOS installed from the
 * host with the image's own modules, the image's signed UEFI chain (shim, GRUB) copied onto an
 * ESP made with mkfs.vfat --offset and mtools (vfat cannot be mounted here), root=UUID written
 * explicitly (no udev here, so no /dev/disk/by-uuid). Loop devices and mounts are always released.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { makeFat } from '../disk/fat.js';
import { attachExtent, partitionExtents } from '../disk/loop.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import {
  BIOS_CORE_MODULES,
  type BootChain,
  biosCoreConfig,
  bootChainFiles,
  type EspFile,
  espFiles,
  espGrubConfig,
  fatVolumeId,
  fstab,
  grubDefaults,
  HYBRID_LAYOUT,
  hybridSfdiskScript,
  PARTITION,
  rootGrubConfig,
} from './disk-layout.js';

export const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';

/** grub-pc-bin's set-up program (not on PATH): writes boot.img and embeds core.img. */
export const GRUB_BIOS_SETUP = '/usr/lib/grub/i386-pc/grub-bios-setup';

/** Programs vanillaDiskFromTar runs (a distro's vanillaTools adds its bootstrapper). */
export const DISK_TOOLS = [
  'grub-mkimage',
  GRUB_BIOS_SETUP,
  'mkfs.vfat',
  'mlabel',
  'mmd',
  'mcopy',
  'sfdisk',
  'losetup',
  'mkfs.ext4',
  'blkid',
  'mount',
  'qemu-img',
  'tar',
  'chroot',
];

export interface DiskAssembly {
  rootfsTar: string;
  rawDisk: string;
  /** Size like 8G or 4096M. */
  size: string;
  hostname: string;
  kernelArgs: string;
  /** The distribution's signed UEFI chain inside the root file system. */
  bootChain: BootChain;
  /** Menu title and GRUB_DISTRIBUTOR (e.g. Debian). */
  distributor: string;
  /** Seeds the identifiers (diskIds): the same seed, the same GUIDs, UUID and ESP id. */
  seed: string;
  log: Logger;
  signal: AbortSignal;
  progress: (text: string) => void;
}

/** A UUID (version 4 form) from a seed and a purpose (pure). */
export function seededUuid(seed: string, what: string): string {
  const h = createHash('sha256').update(`${seed}:${what}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** Every identifier of a hybrid disk, from one seed (pure): the same seed, the same disk ids. */
export function diskIds(seed: string) {
  return {
    gpt: seededUuid(seed, 'gpt'),
    bios: seededUuid(seed, 'part-bios'),
    esp: seededUuid(seed, 'part-esp'),
    root: seededUuid(seed, 'part-root'),
    rootFs: seededUuid(seed, 'fs-root'),
    espVolumeId: createHash('sha256').update(`${seed}:esp-volume-id`).digest().subarray(0, 4),
  };
}

export function sizeToBytes(size: string): number {
  const m = /^(\d+)([MG])$/.exec(size);
  if (!m) throw new Error(`bad size ${size}`);
  return Number(m[1]) * (m[2] === 'G' ? 1024 ** 3 : 1024 ** 2);
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

/** Run helpers of one assembly: r takes the signal; rc (cleanups) does not, so it runs after an abort too. */
interface Assembly {
  a: DiskAssembly;
  r: (argv: string[], extra?: { input?: string }) => ReturnType<typeof run>;
  rc: (argv: string[]) => ReturnType<typeof run>;
  cleanups: CleanupStack;
  /** Where the root file system is mounted while it is filled. */
  mnt: string;
}

/** The GPT (BIOS boot, ESP, root) on a sparse file of the image's size, and the ESP's FAT. */
async function partitionDisk(x: Assembly, ids: ReturnType<typeof diskIds>, espMkfsId: string): Promise<void> {
  const { a } = x;
  a.progress('partitioning disk (GPT: BIOS boot, ESP, root)');
  await rm(a.rawDisk, { force: true });
  await writeFile(a.rawDisk, '');
  await truncate(a.rawDisk, sizeToBytes(a.size));
  await x.r(['sfdisk', '--quiet', a.rawDisk], { input: hybridSfdiskScript(HYBRID_LAYOUT, ids) });
  await makeFat({
    image: a.rawDisk,
    offset: HYBRID_LAYOUT.esp.offset,
    size: HYBRID_LAYOUT.esp.size,
    label: 'EFI',
    volumeId: espMkfsId,
    // The label's directory entry dated ESP_EPOCH too: not the time the vanilla disk was made.
    epoch: ESP_EPOCH,
    log: a.log,
    signal: a.signal,
  });
}

/**
 * The root file system through a loop device of its own (offset + size limit): GRUB's BIOS
 * set-up then sees it as a whole disk of the device map (a partition of a loop device is a disk
 * GRUB cannot map: "cannot find a GRUB drive for /dev/loopNp3"). No partx needed. Made, mounted
 * at x.mnt; returns the device and the file system's UUID.
 */
async function makeRootFs(x: Assembly, rootFsId: string): Promise<{ part: string; uuid: string }> {
  const { a } = x;
  const root = (await partitionExtents(a.rawDisk, a.log, a.signal)).find((p) => p.number === PARTITION.root);
  if (!root) throw new Error(`${a.rawDisk} has no partition ${PARTITION.root}`);
  const rootDev = await attachExtent(a.rawDisk, root, { log: a.log, signal: a.signal });
  x.cleanups.push(`detach ${rootDev.device}`, () => rootDev.detach());
  const part = rootDev.device;
  a.progress('making ext4 file system');
  // orphan_file and metadata_csum_seed are newer than what GRUB 2.06 and extlinux 6.04 read.
  await x.r([
    'mkfs.ext4',
    ...['-q', '-L', 'root', '-U', rootFsId, '-E', `hash_seed=${rootFsId}`],
    ...['-O', '^orphan_file,^metadata_csum_seed', part],
  ]);
  const uuid = await capture(['blkid', '-s', 'UUID', '-o', 'value', part], { log: a.log, signal: a.signal });
  await mkdir(x.mnt, { recursive: true });
  await x.r(['mount', part, x.mnt]);
  x.cleanups.push(`unmount ${x.mnt}`, async () => {
    await x.rc(['umount', x.mnt]);
    await rm(x.mnt, { recursive: true, force: true });
  });
  return { part, uuid };
}

/** The bootstrapped root unpacked, with the files that name this disk: fstab, hostname, GRUB's config. */
async function fillRoot(x: Assembly, uuid: string, espUuid: string): Promise<void> {
  const { a, mnt } = x;
  a.progress('copying root file system');
  await x.r(['tar', '-xpf', a.rootfsTar, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', mnt]);
  await writeFile(join(mnt, 'etc/fstab'), fstab(uuid, espUuid));
  await writeFile(join(mnt, 'etc/hostname'), `${a.hostname}\n`);
  await writeFile(
    join(mnt, 'etc/hosts'),
    `127.0.0.1\tlocalhost\n127.0.1.1\t${a.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
  );
  await mkdir(join(mnt, 'boot/efi'), { recursive: true });
  await mkdir(join(mnt, 'etc/default/grub.d'), { recursive: true });
  await writeFile(
    join(mnt, 'etc/default/grub.d/osbake.cfg'),
    grubDefaults(uuid, a.kernelArgs, a.distributor),
  );
  await mkdir(join(mnt, 'boot/grub/i386-pc'), { recursive: true });
  await writeFile(
    join(mnt, 'boot/grub/grub.cfg'),
    rootGrubConfig(uuid, a.kernelArgs, `${a.distributor} GNU/Linux`),
  );
}

/**
 * What grub-install does, with a core.img that finds /boot/grub by the root's UUID instead of a
 * BIOS drive number guessed on this machine: the image's own modules, grub-mkimage, and
 * grub-bios-setup to write boot.img into the protective MBR and core.img into the BIOS boot
 * partition.
 */
async function installBiosGrub(x: Assembly, part: string, uuid: string): Promise<void> {
  const { a, mnt } = x;
  a.progress('installing GRUB for BIOS (BIOS boot partition)');
  const chain = a.bootChain;
  for (const f of [...bootChainFiles(chain), chain.biosModules]) {
    if (!existsSync(join(mnt, f))) {
      throw new UserError(
        'E_BOOT_CHAIN',
        `the root file system has no /${f}: the disk could not boot under both BIOS and UEFI`,
        'keep the boot loader packages in the vanilla package list (they are added by default)',
      );
    }
  }
  const grubPc = join(mnt, 'boot/grub/i386-pc');
  await x.r(['cp', '-a', `${join(mnt, chain.biosModules)}/.`, `${grubPc}/`]);
  // The early config inside the root (removed again), so the image's own grub-mkimage, run in
  // the root, reads it: the tool of the same GRUB version as the modules (another suite than
  // the host's may have another GRUB); the host's grub-mkimage where the image has none.
  const early = join(mnt, 'boot/grub/.osbake-core.cfg');
  const deviceMap = `${a.rawDisk}.device.map`;
  x.cleanups.push('remove GRUB set-up files', async () => {
    await rm(early, { force: true });
    await rm(deviceMap, { force: true });
  });
  await writeFile(early, biosCoreConfig(uuid));
  const own = existsSync(join(mnt, 'usr/bin/grub-mkimage'));
  const inRoot = (p: string) => (own ? `/${relative(mnt, p)}` : p);
  await x.r([
    ...(own ? ['chroot', mnt] : []),
    ...['grub-mkimage', '-O', 'i386-pc', '-d', inRoot(grubPc), '-o', inRoot(join(grubPc, 'core.img'))],
    ...['-c', inRoot(early), '-p', '/boot/grub', ...BIOS_CORE_MODULES],
  ]);
  await rm(early, { force: true });
  await writeFile(deviceMap, `(hd0) ${a.rawDisk}\n(hd1) ${part}\n`);
  await x.r([
    GRUB_BIOS_SETUP,
    '--skip-fs-probe',
    '--device-map',
    deviceMap,
    '--directory',
    grubPc,
    a.rawDisk,
  ]);
}

export async function assembleHybridDisk(a: DiskAssembly): Promise<void> {
  const x: Assembly = {
    a,
    r: (argv, extra = {}) => run(argv, { log: a.log, signal: a.signal, ...extra }),
    // Cleanups must run even after an abort, so they do not take the signal.
    rc: (argv) => run(argv, { log: a.log }),
    cleanups: new CleanupStack(),
    mnt: `${a.rawDisk}.mnt`,
  };
  const ids = diskIds(a.seed);
  const espId = fatVolumeId(ids.espVolumeId);
  try {
    await partitionDisk(x, ids, espId.mkfs);
    const { part, uuid } = await makeRootFs(x, ids.rootFs);
    await fillRoot(x, uuid, espId.uuid);
    await installBiosGrub(x, part, uuid);
    a.progress('EFI system partition (signed shim and GRUB, mtools)');
    await writeEspFiles(
      `${a.rawDisk}@@${HYBRID_LAYOUT.esp.offset}`,
      espFiles(a.bootChain, espGrubConfig(uuid)),
      x.mnt,
      `${a.rawDisk}.esp.cfg`,
      a.log,
      a.signal,
    );
    await x.r(['sync', '-f', x.mnt]);
  } finally {
    await x.cleanups.runAll(a.log);
  }
}

/** The date of the ESP's files (2023-11-14 22:13:20 UTC): any fixed date; FAT cannot hold 1970. */
export const ESP_EPOCH = 1_700_000_000;

/**
 * Write files onto a FAT file system with mtools (`image@@offset`: no mount; vfat cannot be
 * mounted here): directories first, files from under `root` or given as text (through `scratch`).
 */
export async function writeEspFiles(
  esp: string,
  files: EspFile[],
  root: string,
  scratch: string,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = dirname(f.path).split('/');
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  // Every FAT entry dated ESP_EPOCH (mtools honours SOURCE_DATE_EPOCH): the same files, the same bytes.
  const env = { SOURCE_DATE_EPOCH: String(ESP_EPOCH) };
  await run(['mmd', '-i', esp, ...[...dirs].map((d) => `::/${d}`)], { log, signal, env });
  try {
    for (const f of files) {
      if (f.text !== undefined) await writeFile(scratch, f.text);
      const src = f.text !== undefined ? scratch : join(root, f.from ?? '');
      await run(['mcopy', '-o', '-i', esp, src, `::/${f.path}`], { log, signal, env });
    }
  } finally {
    await rm(scratch, { force: true });
  }
}

/** A root file system tarball → the vanilla disk as qcow2 at dest (raw and tar removed on the way). */
export async function vanillaDiskFromTar(
  o: Omit<DiskAssembly, 'rawDisk'> & { workDir: string; dest: string; echo?: boolean },
): Promise<void> {
  const raw = join(o.workDir, 'disk.raw');
  await assembleHybridDisk({ ...o, rawDisk: raw });
  await rm(o.rootfsTar, { force: true });
  o.progress('converting raw disk to qcow2');
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, o.dest], {
    log: o.log,
    signal: o.signal,
    echo: o.echo,
  });
  await rm(raw, { force: true });
}
