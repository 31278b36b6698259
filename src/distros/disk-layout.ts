/**
 * The vanilla disk's layout and boot configuration (pure): a hybrid GPT disk that boots under
 * legacy BIOS and UEFI, with or without Secure Boot, like Debian's and Rocky's cloud images.
 *   p1  BIOS boot (1 MiB): GRUB's core.img for BIOS (grub-install --target=i386-pc)
 *   p2  EFI System Partition (FAT32, 126 MiB): the distribution's signed chain on the
 *       removable-media path EFI/BOOT/BOOTX64.EFI (shim; no NVRAM entry needed) and under
 *       EFI/<vendor>/, each with a grub.cfg that finds the root file system by UUID
 *   p3  root (ext4, the rest): last, so that an installer can grow it to the disk
 * Both firmwares end in the same /boot/grub/grub.cfg on the root file system.
 */

export const MIB = 2 ** 20;
export const SECTOR = 512;

export const GPT_TYPE = {
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  /** Linux root (x86-64) of the Discoverable Partitions Specification. */
  rootX86_64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
} as const;

export interface HybridLayout {
  bios: { offset: number; size: number };
  esp: { offset: number; size: number };
  /** The root partition runs from here to the end of the disk (less GPT's backup header). */
  root: { offset: number };
}

export const HYBRID_LAYOUT: HybridLayout = {
  bios: { offset: MIB, size: MIB },
  esp: { offset: 2 * MIB, size: 126 * MIB },
  root: { offset: 128 * MIB },
};

/** Partition numbers (1-based) of the hybrid layout. */
export const PARTITION = { bios: 1, esp: 2, root: 3 } as const;

/** sfdisk input for the hybrid layout (pure). */
export function hybridSfdiskScript(
  l: HybridLayout = HYBRID_LAYOUT,
  ids?: { gpt: string; bios: string; esp: string; root: string },
): string {
  const s = (n: number) => n / SECTOR;
  // Given identifiers, the table is the same bytes every time (sfdisk picks random GUIDs otherwise).
  const u = (id: string | undefined) => (id ? `, uuid=${id}` : '');
  return [
    'label: gpt',
    ...(ids ? [`label-id: ${ids.gpt}`] : []),
    `start=${s(l.bios.offset)}, size=${s(l.bios.size)}, type=${GPT_TYPE.biosBoot}, name="bios"${u(ids?.bios)}`,
    `start=${s(l.esp.offset)}, size=${s(l.esp.size)}, type=${GPT_TYPE.esp}, name="esp"${u(ids?.esp)}`,
    `start=${s(l.root.offset)}, type=${GPT_TYPE.rootX86_64}, name="root"${u(ids?.root)}`,
    '',
  ].join('\n');
}

/**
 * Where a distribution keeps its signed UEFI boot chain inside the root file system, and the
 * directory on the ESP its signed GRUB looks in (the prefix built into it: EFI/debian, EFI/rocky).
 */
export interface BootChain {
  vendor: string;
  /** shim, signed by Microsoft's UEFI CA (relative to the root file system). */
  shim: string;
  /** GRUB, signed by the distribution (shim trusts it). */
  grub: string;
  /** MokManager, for enrolling a site's own keys (optional). */
  mokManager?: string;
  /** GRUB's BIOS modules (grub-install --directory). */
  biosModules: string;
}

/** The UEFI files of a chain (relative to the root file system) (pure). */
export function bootChainFiles(chain: BootChain): string[] {
  return [chain.shim, chain.grub, ...(chain.mokManager ? [chain.mokManager] : [])];
}

/** The ESP's files: its path on the ESP → the file in the root file system, or text (pure). */
export interface EspFile {
  path: string;
  from?: string;
  text?: string;
}

/**
 * The ESP's files (pure): the chain on the removable-media path EFI/BOOT/, and grub.cfg under
 * EFI/<vendor>/ where the signed GRUB looks first. `vendorCopy` also puts shim, GRUB and
 * MokManager there (the installed layout, for a boot entry a site may add later); a stick does
 * without.
 */
export function espFiles(chain: BootChain, espGrubCfg: string, vendorCopy = true): EspFile[] {
  const out: EspFile[] = [];
  const dirs = ['EFI/BOOT', `EFI/${chain.vendor}`];
  for (const dir of dirs) {
    const removable = dir === 'EFI/BOOT';
    if (removable || vendorCopy) {
      out.push({ path: `${dir}/${removable ? 'BOOTX64.EFI' : 'shimx64.efi'}`, from: chain.shim });
      out.push({ path: `${dir}/grubx64.efi`, from: chain.grub });
      if (chain.mokManager) out.push({ path: `${dir}/mmx64.efi`, from: chain.mokManager });
    }
    out.push({ path: `${dir}/grub.cfg`, text: espGrubCfg });
  }
  return out;
}

/** Modules built into the BIOS core.img: enough to find and read /boot/grub on the root. */
export const BIOS_CORE_MODULES = ['biosdisk', 'part_gpt', 'ext2', 'search_fs_uuid'];

/** core.img's embedded config: /boot/grub on the file system with the root's UUID (pure). */
export function biosCoreConfig(rootUuid: string): string {
  return [`search.fs_uuid ${rootUuid} root`, 'set prefix=($root)/boot/grub', ''].join('\n');
}

/** The ESP's grub.cfg: find the root file system by UUID and read its grub.cfg (pure). */
export function espGrubConfig(rootUuid: string): string {
  return [
    `search --no-floppy --fs-uuid --set=root ${rootUuid}`,
    "set prefix=($root)'/boot/grub'",
    'configfile $prefix/grub.cfg',
    '',
  ].join('\n');
}

/**
 * /boot/grub/grub.cfg as assembled (pure): the serial console and the screen, the kernel through
 * the /vmlinuz and /initrd.img links the kernel packages keep current. A later update-grub (run
 * by the kernel packages) replaces it with the same choices from /etc/default/grub.d/osbake.cfg.
 */
export function rootGrubConfig(rootUuid: string, kernelArgs: string, title: string): string {
  return [
    '# Written by osbake when the disk was assembled; update-grub replaces it',
    '# (settings: /etc/default/grub.d/osbake.cfg).',
    'set default=0',
    'set timeout=1',
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    `search --no-floppy --fs-uuid --set=root ${rootUuid}`,
    `menuentry '${title.replaceAll("'", '')}' --id osbake {`,
    `  linux /vmlinuz root=UUID=${rootUuid} ro ${kernelArgs}`,
    '  initrd /initrd.img',
    '}',
    '',
  ].join('\n');
}

/**
 * /etc/default/grub.d/osbake.cfg (pure): the same choices for update-grub. GRUB_DEVICE makes it
 * write root=UUID=… even where /dev/disk/by-uuid does not exist (a chroot build has no udev and
 * update-grub would otherwise write root=/dev/loopNp3).
 */
export function grubDefaults(rootUuid: string, kernelArgs: string, distributor: string): string {
  return [
    '# osbake: the boot settings of this image (read by update-grub after the defaults)',
    `GRUB_DISTRIBUTOR=${distributor}`,
    'GRUB_TIMEOUT=1',
    `GRUB_CMDLINE_LINUX="${kernelArgs}"`,
    'GRUB_CMDLINE_LINUX_DEFAULT=""',
    'GRUB_TERMINAL="console serial"',
    'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"',
    'GRUB_DISABLE_OS_PROBER=true',
    `GRUB_DEVICE="UUID=${rootUuid}"`,
    '',
  ].join('\n');
}

/** fstab of the hybrid disk: the root by UUID, the ESP by its FAT volume id (pure). */
export function fstab(rootUuid: string, espId?: string): string {
  return [
    '# <file system> <mount point> <type> <options> <dump> <pass>',
    `UUID=${rootUuid} / ext4 errors=remount-ro 0 1`,
    ...(espId ? [`UUID=${espId} /boot/efi vfat umask=0077,nofail 0 2`] : []),
    '',
  ].join('\n');
}

/** A FAT volume id (8 hex digits, from 4 random bytes) and how fstab/blkid spell it (pure). */
export function fatVolumeId(bytes: Uint8Array): { mkfs: string; uuid: string } {
  const hex = Array.from(bytes.slice(0, 4), (b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return { mkfs: hex, uuid: `${hex.slice(0, 4)}-${hex.slice(4)}` };
}
