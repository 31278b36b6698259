/** Debian: vanilla disk from mmdebstrap (all three suites), apt mirrors for the build. */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import { run } from '../exec/run.js';
import { assembleBiosDisk } from './disk-image.js';
import type { BootstrapContext, Distro } from './distro.js';
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
];

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

export const debian: Distro = {
  name: 'debian',
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
      overlay: VANILLA_OVERLAY,
    };
  },

  async bootstrapVanilla(ctx: BootstrapContext, dest: string) {
    const { project, image, log, signal, workDir } = ctx;
    const overlay = join(workDir, 'overlay');
    const tar = join(workDir, 'rootfs.tar');
    const raw = join(workDir, 'disk.raw');
    await writeOverlay(overlay);
    ctx.progress(`mmdebstrap ${image.config.suite} (${image.config.vanilla.channels.join(', ')})`);
    await run(buildMmdebstrapArgs(project, image, overlay, tar), { log, signal, echo: ctx.debug });
    await assembleBiosDisk({
      rootfsTar: tar,
      rawDisk: raw,
      size: image.config.vm.diskSize ?? project.config.vm.diskSize,
      hostname: image.name,
      kernelArgs: KERNEL_ARGS,
      log,
      signal,
      progress: ctx.progress,
    });
    await rm(tar, { force: true });
    ctx.progress('converting raw disk to qcow2');
    await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, dest], {
      log,
      signal,
      echo: ctx.debug,
    });
    await rm(raw, { force: true });
  },

  buildVariables(project, image) {
    const m = project.config.mirrors.debian;
    return { apt_mirror: m.main, apt_security_mirror: m.security, suite: image.config.suite };
  },

  packageState: { variable: 'dpkg_status_file', file: 'dpkg-status' },

  repoDirName(image) {
    return `Debian${debianVersion(image.config.suite)}`;
  },

  sbomDistro(image) {
    return { distro: 'debian', version: debianVersion(image.config.suite) };
  },
};
