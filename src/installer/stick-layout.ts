/**
 * The USB stick's layout and boot configuration (pure). MBR, so that both firmwares find it:
 *   p1  ESP, FAT (type ef): EFI/BOOT/BOOTX64.EFI = Debian's shim (signed by Microsoft's UEFI CA),
 *       grubx64.efi = Debian's signed GRUB, grub.cfg (also in EFI/debian/, where that GRUB looks)
 *   p2  data, ext4 (type 83, active): boot/ (kernel, initramfs, extlinux), osbake/ (payload),
 *       package/ (--package), README.txt, installer.conf, logs/
 * SeaBIOS/legacy BIOS runs syslinux's MBR → the active partition's extlinux; UEFI firmware runs
 * the ESP's removable-media loader (with Secure Boot enforced too: shim → GRUB → Debian's signed
 * kernel). Both load the same /boot/vmlinuz and /boot/initrd.img.
 */

export const MIB = 2 ** 20;
export const SECTOR = 512;
export const ESP_MIB = 16;

export interface StickLayout {
  totalBytes: number;
  esp: { offset: number; size: number };
  data: { offset: number; size: number };
}

/**
 * Data partition size for `contentBytes` of files: 1% + 12 MiB for ext4 (4 MiB journal, few
 * inodes, no resize reserve) and install logs, whole MiB (pure).
 */
export function dataPartitionBytes(contentBytes: number): number {
  const raw = contentBytes * 1.01 + 12 * MIB;
  return Math.ceil(raw / MIB) * MIB;
}

export function planStickLayout(contentBytes: number): StickLayout {
  const esp = { offset: MIB, size: ESP_MIB * MIB };
  const data = { offset: esp.offset + esp.size, size: dataPartitionBytes(contentBytes) };
  return { totalBytes: data.offset + data.size, esp, data };
}

/** sfdisk input for the layout (pure). */
export function sfdiskScript(l: StickLayout): string {
  const s = (n: number) => n / SECTOR;
  return [
    'label: dos',
    `start=${s(l.esp.offset)}, size=${s(l.esp.size)}, type=ef`,
    `start=${s(l.data.offset)}, size=${s(l.data.size)}, type=83, bootable`,
    '',
  ].join('\n');
}

/** The installer kernel's command line: screen is the console, serial mirrors it (pure). */
export function installerKernelArgs(label: string, extra: string): string {
  return ['console=ttyS0,115200n8', 'console=tty0', `osbake.label=${label}`, 'panic=30', extra]
    .filter(Boolean)
    .join(' ');
}

export function extlinuxInstallerConfig(args: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT install',
    'TIMEOUT 20',
    'PROMPT 0',
    'LABEL install',
    '  MENU LABEL osbake USB installer',
    '  LINUX /boot/vmlinuz',
    '  INITRD /boot/initrd.img',
    `  APPEND ${args}`,
    '',
  ].join('\n');
}

/** The ESP's grub.cfg: find the data partition by label, boot the same kernel (pure). */
export function grubInstallerConfig(label: string, args: string): string {
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'set timeout=2',
    `search --no-floppy --label ${label} --set=root`,
    "menuentry 'osbake USB installer' {",
    `  linux /boot/vmlinuz ${args}`,
    '  initrd /boot/initrd.img',
    '}',
    '',
  ].join('\n');
}

export interface StickFacts {
  image: string;
  build: string;
  release: string;
  installerBuild: string;
  payloadImage: string;
  payloadBuild: string;
  payloadSha256: string;
  rawSize: number;
  dataBytes: number;
  ranges: number;
  label: string;
  packageFile?: string;
}

/** osbake/image.txt: key=value facts the installer and people read (pure). */
export function imageTxt(f: StickFacts): string {
  return [
    `${f.payloadImage} ${f.release} (${f.payloadBuild})`,
    `image=${f.payloadImage}`,
    `release=${f.release}`,
    `build=${f.payloadBuild}`,
    `qcow2_sha256=${f.payloadSha256}`,
    `raw_size=${f.rawSize}`,
    `data_bytes=${f.dataBytes}`,
    `ranges=${f.ranges}`,
    `installer=${f.installerBuild}`,
    '',
  ].join('\n');
}

export function installerConfExample(): string {
  return [
    '# osbake USB installer settings. Uncomment target= to install unattended at boot.',
    '# The kernel command line (osbake.target=, osbake.hostname=, osbake.node=, osbake.then=,',
    '# osbake.console=) overrides this file; both override the node found in osbake/nodes.conf.',
    '#target=/dev/sda',
    '#hostname=node01',
    '#node=rack1-n01       # this machine is that node of osbake/nodes.conf (else: by MAC, DMI serial, menu)',
    '#then=poweroff        # poweroff | reboot | shell',
    '#onerror=shell        # shell | poweroff | reboot',
    '#console=ttyS0        # the menu on the first serial port (IPMI SOL) instead of the screen',
    '',
  ].join('\n');
}

export function readmeTxt(f: StickFacts): string {
  return [
    `osbake USB installer ${f.installerBuild}`,
    '',
    `Installs ${f.payloadImage} of release ${f.release} (${f.payloadBuild}) on a disk, without network.`,
    'Boot this stick (BIOS or UEFI). With no settings it shows a menu of the disks (model, size,',
    'serial; never this stick), asks for confirmation, a hostname, and whether to power off or reboot.',
    'The menu is on the screen; console=ttyS0 in installer.conf (or osbake.console=ttyS0) puts it on',
    'the first serial port for machines reached over a serial console.',
    '',
    'Unattended: put target=/dev/sdX (and hostname=, then=) in installer.conf on this partition, or add',
    'osbake.target=/dev/sdX osbake.hostname=node01 osbake.then=poweroff to the kernel command line.',
    '',
    'The installer checks SHA256SUMS, writes only the data ranges of the image (osbake/payload.ranges:',
    'offset, length, sha256; osbake/payload.zst: those ranges concatenated, zstd), reads every range',
    'back and compares its SHA-256, grows the last partition and its ext4 file system to the disk,',
    "sets the hostname and the node's identity (osbake/nodes.conf: addresses, SSH keys, files; the",
    'node is found by node= in installer.conf, a MAC of this machine, its DMI serial, or the menu),',
    'and logs to the console and to logs/ on this partition.',
    '',
    'Files:',
    '  boot/                kernel, initramfs (busybox) and extlinux (BIOS); the ESP holds shim and',
    '                       GRUB signed for UEFI Secure Boot',
    '  osbake/image.txt     what the payload is',
    `  osbake/${f.payloadBuild}.bmap  block map of the raw image (bmap-tools format)`,
    '  osbake/payload.*     the data ranges and their list; SHA256SUMS covers them',
    "  osbake/nodes.conf    the nodes' identities (nodes: in osbake.yaml), covered by SHA256SUMS",
    ...(f.packageFile ? [`  package/${f.packageFile}  extra payload (--package) and its .sha256`] : []),
    '  installer.conf       settings (see the comments in it)',
    '  logs/                one log per install',
    '',
  ].join('\n');
}
