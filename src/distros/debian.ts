/** Debian: vanilla disk from mmdebstrap (all three suites), apt mirrors for the build. */
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileSize, sha256File } from '../artifacts/checksum.js';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import {
  aptDownload,
  aptSimulateUpgrade,
  aptUpdate,
  DEBIAN_KEYRING,
  makeAptRoot,
  parseAptRemovals,
  parseAptSimulation,
} from '../patches/apt.js';
import type { CreatedBundle } from '../patches/bundle.js';
import {
  bundleManifest,
  packBundle,
  signAptRepo,
  writeAptRepoIndex,
  writeBundleMetadata,
} from '../patches/bundle.js';
import { DISK_TOOLS, ESP_EPOCH, vanillaDiskFromTar } from './disk-image.js';
import type { BootChain } from './disk-layout.js';
import type { BootstrapContext, Distro, PatchBundleInput } from './distro.js';
import { VANILLA_OVERLAY, VANILLA_SERVICES } from './vanilla-overlay.js';

/** What every vanilla Debian disk needs to boot, get DHCP and accept SSH with a build key. */
export const DEBIAN_BASE_PACKAGES = [
  'linux-image-amd64',
  'systemd-sysv',
  'udev',
  'kmod',
  'e2fsprogs',
  'iproute2',
  'netbase',
  'systemd-resolved',
  'ca-certificates',
  'openssh-server',
  'python3',
  'sudo',
  // The boot chain of the hybrid disk (disk-layout.ts): Debian's signed shim and GRUB for UEFI
  // with Secure Boot, GRUB's BIOS modules, mokutil (Secure Boot state, MOK enrolment), and
  // fsck for the ESP.
  'shim-signed',
  'grub-efi-amd64-signed',
  'grub-pc-bin',
  'mokutil',
  'dosfstools',
];

/** Where Debian's packages put the signed UEFI chain, and GRUB's BIOS modules. */
export const DEBIAN_BOOT_CHAIN: BootChain = {
  vendor: 'debian',
  shim: 'usr/lib/shim/shimx64.efi.signed',
  grub: 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed',
  mokManager: 'usr/lib/shim/mmx64.efi.signed',
  biosModules: 'usr/lib/grub/i386-pc',
};

/**
 * Debian's signed GRUB for network boot (grub-efi-amd64-signed): prefix /grub on the TFTP server,
 * reads grub/grub.cfg there; what shim loads as grubx64.efi when a node boots from the network.
 */
export const DEBIAN_NET_GRUB = 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed';

export const KERNEL_ARGS = 'console=tty0 console=ttyS0,115200n8 net.ifnames=0';

export type DebianChannel = 'release' | 'updates' | 'security';

/** apt source lines for the chosen channels (default: all three, as the security kernel needs). */
export function debianSources(
  project: Project,
  suite: string,
  channels: readonly DebianChannel[] = ['release', 'updates', 'security'],
  options = '',
): string[] {
  const m = project.config.mirrors.debian;
  const o = options ? `[${options}] ` : '';
  const all: Record<DebianChannel, string> = {
    release: `deb ${o}${m.main} ${suite} main`,
    updates: `deb ${o}${m.main} ${suite}-updates main`,
    security: `deb ${o}${m.security} ${suite}-security main`,
  };
  return channels.map((c) => all[c]);
}

const DEBIAN_VERSIONS: Record<string, string> = {
  buster: '10',
  bullseye: '11',
  bookworm: '12',
  trixie: '13',
};

export function debianVersion(suite: string): string {
  return DEBIAN_VERSIONS[suite] ?? suite;
}

/** The mmdebstrap argv (pure, so tests can assert it). */
export function buildMmdebstrapArgs(
  project: Project,
  image: ImageDefinition,
  overlayDir: string,
  outTar: string,
): string[] {
  const cfg = image.config;
  const packages = [...new Set([...DEBIAN_BASE_PACKAGES, ...cfg.vanilla.packages])];
  const hooks = [
    `sync-in ${overlayDir} /`,
    `chroot "$1" systemctl enable ${VANILLA_SERVICES.join(' ')}`,
    // Host keys made by openssh-server's postinst would be shared by every image: remove them.
    'rm -f "$1"/etc/ssh/ssh_host_*',
    // An empty machine-id makes systemd generate a new one at first boot.
    ': > "$1"/etc/machine-id',
    'rm -f "$1"/var/lib/dbus/machine-id',
    ...cfg.vanilla.hooks,
  ];
  return [
    'mmdebstrap',
    '--variant=minbase',
    '--mode=root',
    '--format=tar',
    `--include=${packages.join(',')}`,
    ...hooks.map((h) => `--customize-hook=${h}`),
    cfg.suite,
    outTar,
    ...debianSources(project, cfg.suite, cfg.vanilla.channels),
  ];
}

async function writeOverlay(dir: string): Promise<void> {
  for (const [path, file] of Object.entries(VANILLA_OVERLAY)) {
    const dest = join(dir, path);
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, file.content);
    await chmod(dest, file.mode);
  }
}

/** --create-patches for Debian: apt in a private root over the image's dpkg status (host side). */
async function createDebianPatchBundle(i: PatchBundleInput): Promise<CreatedBundle> {
  const { project, image, log, signal } = i;
  const status = i.stateFile;
  if (!existsSync(status)) {
    throw new UserError(
      'E_NO_DPKG_STATUS',
      'the image did not produce its dpkg status',
      'the template must download /var/lib/dpkg/status to the dpkg_status_file variable',
    );
  }
  const sources = debianSources(
    project,
    image.config.suite,
    ['release', 'updates', 'security'],
    `signed-by=${DEBIAN_KEYRING}`,
  );
  const root = await makeAptRoot(join(i.workDir, 'apt'), status, sources);
  i.onDetail('apt-get update (release, updates, security)');
  await aptUpdate(root, log, signal);
  const sim = await aptSimulateUpgrade(root, log, signal);
  const removals = parseAptRemovals(sim);
  if (removals.length > 0) {
    throw new UserError(
      'E_PATCH_REMOVALS',
      `upgrading the image would remove ${removals.join(', ')}`,
      'resolve the conflict in the image definition first',
    );
  }
  const patches = parseAptSimulation(sim);
  const dir = join(i.workDir, 'bundle');
  i.onDetail(`downloading ${patches.length} package(s)`);
  await aptDownload(root, patches, join(dir, 'pool'), log, signal);
  await writeAptRepoIndex(dir, i.id, log, signal);
  if (i.signingKey) {
    i.onDetail(`signing the repository (InRelease, Release.gpg) with ${i.signingKey.fingerprint}`);
    await signAptRepo(dir, i.signingKey, log);
  }
  await writeBundleMetadata(
    dir,
    bundleManifest({
      id: i.id,
      distro: image.config.distro,
      suite: image.config.suite,
      image: image.name,
      artifact: i.artifact,
      patches,
    }),
  );
  const file = join(i.workDir, `${i.id}.tar.zst`);
  i.onDetail('packing the bundle');
  await packBundle(dir, file, log, signal);
  await rm(join(i.workDir, 'apt'), { recursive: true, force: true });
  return {
    id: i.id,
    file,
    listFile: join(dir, 'PATCHES.txt'),
    path: `repos/Debian${debianVersion(image.config.suite)}/${i.id}.tar.zst`,
    sha256: await sha256File(file),
    size: await fileSize(file),
    packages: patches.length,
  };
}

export const debian: Distro = {
  name: 'debian',
  checkImage(image) {
    return /^[a-z][a-z0-9-]*$/.test(image.config.suite)
      ? []
      : [
          {
            path: 'suite',
            message: `"${image.config.suite}" is not a Debian suite name: use e.g. suite: bookworm`,
          },
        ];
  },
  vanilla: 'host',

  vanillaInputs(project, image) {
    return {
      distro: 'debian',
      suite: image.config.suite,
      packages: [...new Set([...DEBIAN_BASE_PACKAGES, ...image.config.vanilla.packages])].sort(),
      hooks: image.config.vanilla.hooks,
      sources: debianSources(project, image.config.suite, image.config.vanilla.channels),
      diskSize: image.config.vm.diskSize ?? project.config.vm.diskSize,
      kernelArgs: KERNEL_ARGS,
      bootChain: DEBIAN_BOOT_CHAIN,
      overlay: VANILLA_OVERLAY,
    };
  },

  async bootstrapVanilla(ctx: BootstrapContext, dest: string) {
    const { project, image, log, signal, workDir } = ctx;
    const overlay = join(workDir, 'overlay');
    const tar = join(workDir, 'rootfs.tar');
    await writeOverlay(overlay);
    ctx.progress(`mmdebstrap ${image.config.suite} (${image.config.vanilla.channels.join(', ')})`);
    // SOURCE_DATE_EPOCH: mmdebstrap clamps the tree's times, and the kernel's update-initramfs
    // (mkinitramfs) dates the initrd's entries with it — without it the initrd, and so every
    // image from this vanilla disk, carries the time the disk was bootstrapped.
    await run(buildMmdebstrapArgs(project, image, overlay, tar), {
      log,
      signal,
      echo: ctx.debug,
      env: { SOURCE_DATE_EPOCH: String(ESP_EPOCH) },
    });
    await vanillaDiskFromTar({
      rootfsTar: tar,
      workDir,
      dest,
      size: image.config.vm.diskSize ?? project.config.vm.diskSize,
      hostname: image.name,
      kernelArgs: KERNEL_ARGS,
      bootChain: DEBIAN_BOOT_CHAIN,
      distributor: 'Debian',
      log,
      signal,
      progress: ctx.progress,
      echo: ctx.debug,
      seed: ctx.seed,
    });
  },

  chrootGuards: {
    'usr/sbin/policy-rc.d': {
      mode: 0o755,
      content:
        '#!/bin/sh\n# osbake: no service starts while the image is provisioned in a chroot\nexit 101\n',
    },
  },

  vanillaTools: ['mmdebstrap', ...DISK_TOOLS],

  checkBootstrap() {
    // The configured Debian mirrors (always set) are the sources.
  },

  checkPatchSources() {
    // The configured Debian mirrors (always set) are the sources.
  },

  createPatchBundle: createDebianPatchBundle,

  buildVariables(project, image) {
    const m = project.config.mirrors.debian;
    return { apt_mirror: m.main, apt_security_mirror: m.security, suite: image.config.suite };
  },

  packageState: { variable: 'dpkg_status_file', file: 'dpkg-status' },

  repoDirName(image) {
    return `Debian${debianVersion(image.config.suite)}`;
  },

  sbomDistro(image) {
    return { distro: 'debian', version: debianVersion(image.config.suite), purlType: 'deb' };
  },
};
