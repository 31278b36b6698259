/**
 * Rocky Linux's host-made vanilla root (the chroot builder's starting point, as mkosi does it):
 * `dnf --installroot` from the configured BaseOS/AppStream mirrors with the release version of
 * image.yaml, GPG-checked against Rocky's key; then the same first-boot units as every vanilla
 * disk, no host keys, an empty machine-id, a generic (not host-only) initramfs, and /vmlinuz +
 * /initrd.img links for the boot loader. Debian's rpm keeps its database in ~/.rpmdb, so dnf runs
 * with a HOME whose .rpmmacros sets %_dbpath /var/lib/rpm (as Rocky has it).
 */
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import type { BootChain } from './disk-layout.js';
import type { OverlayFile } from './vanilla-overlay.js';

/** What a vanilla Rocky disk needs to boot, get DHCP (NetworkManager) and accept SSH with a build key. */
export const ROCKY_BASE_PACKAGES = [
  'rocky-release',
  'rocky-gpg-keys',
  'kernel',
  'dracut-config-generic',
  'systemd',
  'NetworkManager',
  'openssh-server',
  'platform-python',
  'python3',
  'dnf',
  'sudo',
  'e2fsprogs',
  'iproute',
  'kmod',
  'rootfiles',
  // The boot chain of the hybrid disk (disk-layout.ts): shim and GRUB signed for Secure Boot,
  // GRUB's BIOS modules, mokutil, fsck for the ESP.
  'shim-x64',
  'grub2-efi-x64',
  'grub2-pc-modules',
  'mokutil',
  'dosfstools',
];

/** Where Rocky's packages put the signed UEFI chain (under /boot/efi in the root), and GRUB's BIOS modules. */
export const ROCKY_BOOT_CHAIN: BootChain = {
  vendor: 'rocky',
  shim: 'boot/efi/EFI/rocky/shimx64.efi',
  grub: 'boot/efi/EFI/rocky/grubx64.efi',
  mokManager: 'boot/efi/EFI/rocky/mmx64.efi',
  biosModules: 'usr/lib/grub/i386-pc',
};

export const ROCKY_VANILLA_SERVICES = ['NetworkManager.service', 'sshd.service'];

/** Files Rocky's vanilla root gets besides osbake's common overlay (no systemd-networkd on Rocky 8). */
export const ROCKY_OVERLAY: Record<string, OverlayFile> = {
  'etc/dracut.conf.d/osbake-generic.conf': { mode: 0o644, content: 'hostonly="no"\n' },
};

/** The repositories of a Rocky bootstrap: the configured mirrors, GPG-checked (pure). */
export function rockyBootstrapRepoFile(project: Project): string {
  const m = project.config.mirrors.rocky;
  const repos = [
    ['osbake-baseos', m.baseos],
    ['osbake-appstream', m.appstream],
  ] as const;
  return repos
    .filter(([, url]) => url)
    .map(
      ([id, url]) =>
        `[${id}]\nname=${id} (osbake bootstrap)\nbaseurl=${url}\nenabled=1\ngpgcheck=1\ngpgkey=${m.gpgkey}\n`,
    )
    .join('\n');
}

/** Refuse before any work a Rocky bootstrap without mirrors (no mirrorlist is reachable offline). */
export function checkRockyBootstrap(project: Project, image: ImageDefinition): void {
  const m = project.config.mirrors.rocky;
  if (!m.baseos || !m.appstream) {
    throw new UserError(
      'E_NO_RPM_MIRROR',
      `a vanilla disk of ${image.name} (dnf --installroot) needs mirrors.rocky.baseos and .appstream`,
      'set them in osbake.yaml (e.g. http://mirror/rocky/8.10/BaseOS/x86_64/os/), or build with --builder qemu (ISO + kickstart)',
    );
  }
}

/** The dnf argv of the bootstrap (pure). */
export function buildDnfBootstrapArgs(o: {
  root: string;
  confDir: string;
  releasever: string;
  packages: readonly string[];
}): string[] {
  return [
    'dnf',
    '--assumeyes',
    '--noplugins',
    `--config=${join(o.confDir, 'dnf.conf')}`,
    `--installroot=${o.root}`,
    `--releasever=${o.releasever}`,
    `--setopt=reposdir=${join(o.confDir, 'repos.d')}`,
    `--setopt=cachedir=${join(o.confDir, 'cache')}`,
    '--setopt=install_weak_deps=False',
    '--setopt=tsflags=nodocs',
    '--setopt=keepcache=False',
    'install',
    ...o.packages,
  ];
}

/** Install the packages into `root` with dnf (the real one), from the repositories in repoFile. */
export async function dnfInstallRoot(o: {
  root: string;
  confDir: string;
  repoFile: string;
  releasever: string;
  packages: readonly string[];
  log: Logger;
  signal: AbortSignal;
  echo?: boolean;
}): Promise<void> {
  await mkdir(join(o.confDir, 'repos.d'), { recursive: true });
  await mkdir(o.root, { recursive: true });
  await writeFile(join(o.confDir, 'repos.d', 'osbake.repo'), o.repoFile);
  await writeFile(join(o.confDir, 'dnf.conf'), '[main]\nbest=True\nskip_if_unavailable=False\n');
  await writeFile(join(o.confDir, '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
  await run(buildDnfBootstrapArgs(o), {
    log: o.log,
    signal: o.signal,
    echo: o.echo,
    env: { HOME: o.confDir },
    tag: 'dnf',
  });
}

/** After dnf: overlay files, first-boot units, no identity, boot loader links (on the host). */
export async function finishRockyRoot(o: {
  root: string;
  overlay: Record<string, OverlayFile>;
  services: readonly string[];
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  for (const [path, f] of Object.entries({ ...o.overlay, ...ROCKY_OVERLAY })) {
    if (path.startsWith('etc/systemd/network/')) continue; // systemd-networkd is not in Rocky 8
    const dest = join(o.root, path);
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, f.content, { mode: f.mode });
  }
  await run(['systemctl', `--root=${o.root}`, 'enable', ...o.services], { log: o.log, signal: o.signal });
  for (const f of await readdir(join(o.root, 'etc/ssh')).catch(() => [] as string[])) {
    if (f.startsWith('ssh_host_')) await rm(join(o.root, 'etc/ssh', f), { force: true });
  }
  await writeFile(join(o.root, 'etc/machine-id'), '');
  // Files written from the host carry no SELinux labels: relabel at first boot.
  await writeFile(join(o.root, '.autorelabel'), '');
  const boot = await readdir(join(o.root, 'boot')).catch(() => [] as string[]);
  const kernel = boot
    .filter((f) => f.startsWith('vmlinuz-') && !f.includes('rescue'))
    .sort()
    .at(-1);
  if (kernel) {
    const version = kernel.slice('vmlinuz-'.length);
    await rm(join(o.root, 'vmlinuz'), { force: true });
    await rm(join(o.root, 'initrd.img'), { force: true });
    await symlink(`boot/${kernel}`, join(o.root, 'vmlinuz'));
    await symlink(`boot/initramfs-${version}.img`, join(o.root, 'initrd.img'));
  }
}
