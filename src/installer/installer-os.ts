/**
 * The installer OS: Debian's kernel and a busybox initramfs, made from a small mmdebstrap root on
 * the host (no VM). Cached under <workDir>/cache/installer-os/<key>/ by a hash of every input.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hashInputs } from '../artifacts/checksum.js';
import { ensureCacheDir } from '../config/cache-dir.js';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import { DEBIAN_BOOT_CHAIN, DEBIAN_NET_GRUB, debianSources } from '../distros/debian.js';
import { type BootChain, bootChainFiles } from '../distros/disk-layout.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import { assembleInitramfs, BASE_MODULES, INSTALLER_TOOLS, NET_MODULES } from './initramfs.js';

/** Bump when the way the installer OS is assembled changes. */
export const INSTALLER_OS_FORMAT = 4;

export const INSTALLER_OS_PACKAGES = [
  'linux-image-amd64',
  'busybox-static',
  'zstd',
  'fdisk',
  'e2fsprogs',
  'util-linux',
  'kmod',
  // The stick's UEFI loader: Debian's shim and GRUB, signed for Secure Boot (copied to the ESP).
  'shim-signed',
  'grub-efi-amd64-signed',
  // gpgv: the installer checks the stick's signed SHA256SUMS before writing.
  'gpgv',
  // curl: the network install fetches the payload's ranges with HTTP range requests.
  'curl',
];

/** mmdebstrap argv for the installer root (pure). initramfs-tools is diverted: osbake makes its own. */
export function buildInstallerRootArgs(project: Project, image: ImageDefinition, outDir: string): string[] {
  return [
    'mmdebstrap',
    '--variant=essential',
    '--mode=root',
    '--format=directory',
    `--include=${INSTALLER_OS_PACKAGES.join(',')}`,
    '--essential-hook=chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs',
    '--essential-hook=ln -sf /bin/true "$1"/usr/sbin/update-initramfs',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    image.config.suite,
    outDir,
    ...debianSources(project, image.config.suite),
  ];
}

export function installerModules(image: ImageDefinition): string[] {
  return [...new Set([...BASE_MODULES, ...NET_MODULES, ...image.config.installer.modules])];
}

export function installerOsInputs(project: Project, image: ImageDefinition): Record<string, unknown> {
  return {
    format: INSTALLER_OS_FORMAT,
    suite: image.config.suite,
    packages: INSTALLER_OS_PACKAGES,
    sources: debianSources(project, image.config.suite),
    tools: INSTALLER_TOOLS,
    modules: installerModules(image),
  };
}

export interface InstallerOs {
  dir: string;
  kernel: string;
  /** The base initramfs (tools, libraries, modules) without /init. */
  initrd: string;
  kernelVersion: string;
  /** The signed UEFI chain for the stick's ESP: bootChain's paths under chainRoot. */
  bootChain: BootChain;
  chainRoot: string;
  /** The signed chain a node boots from the network under Secure Boot: shim, then Debian's grubnetx64. */
  netChain: { shim: string; grub: string };
  key: string;
  cached: boolean;
}

/** The kernel version of the only kernel in <root>/boot (pure on a file list). */
export function kernelVersionFrom(bootFiles: string[]): string {
  const versions = bootFiles
    .map((f) => /^vmlinuz-(.+)$/.exec(f)?.[1])
    .filter((v): v is string => Boolean(v))
    .sort();
  const v = versions.at(-1);
  if (!v) throw new Error('the installer root has no /boot/vmlinuz-*');
  return v;
}

/** Return the cached installer OS, or bootstrap and assemble it (under a lock). */
export async function ensureInstallerOs(o: {
  project: Project;
  image: ImageDefinition;
  scratchDir: string;
  log: Logger;
  signal: AbortSignal;
  progress: (t: string) => void;
}): Promise<InstallerOs> {
  const key = hashInputs(installerOsInputs(o.project, o.image)).slice(0, 16);
  const cacheRoot = join(o.project.workDir, 'cache', 'installer-os');
  const dir = join(cacheRoot, key);
  const result = async (cached: boolean): Promise<InstallerOs> => ({
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    kernelVersion: (await readFile(join(dir, 'kernel-version'), 'utf8')).trim(),
    bootChain: DEBIAN_BOOT_CHAIN,
    chainRoot: join(dir, 'efi-root'),
    netChain: {
      shim: join(dir, 'efi-root', DEBIAN_BOOT_CHAIN.shim),
      grub: join(dir, 'efi-root', DEBIAN_NET_GRUB),
    },
    key,
    cached,
  });
  const { cached } = await ensureCacheDir({
    dir,
    marker: 'kernel-version',
    what: `the installer OS cache entry ${dir}`,
    scratch: join(o.scratchDir, 'installer-os'),
    log: o.log,
    progress: o.progress,
    make: async (out, scratch) => {
      const root = join(scratch, 'root');
      o.progress(`mmdebstrap ${o.image.config.suite}: kernel, busybox, disk tools`);
      await run(buildInstallerRootArgs(o.project, o.image, root), { log: o.log, signal: o.signal });
      const kernelVersion = kernelVersionFrom(await readdir(join(root, 'boot')));
      o.progress('assembling the initramfs');
      await assembleInitramfs({
        root,
        kernelVersion,
        modules: installerModules(o.image),
        staging: join(scratch, 'initramfs'),
        out: join(out, 'initrd.img'),
        log: o.log,
        signal: o.signal,
      });
      await copyFile(join(root, 'boot', `vmlinuz-${kernelVersion}`), join(out, 'vmlinuz'));
      for (const f of [...bootChainFiles(DEBIAN_BOOT_CHAIN), DEBIAN_NET_GRUB]) {
        await mkdir(dirname(join(out, 'efi-root', f)), { recursive: true });
        await copyFile(join(root, f), join(out, 'efi-root', f));
      }
      // The marker: written last.
      await writeFile(join(out, 'kernel-version'), `${kernelVersion}\n`);
    },
  });
  return result(cached);
}
