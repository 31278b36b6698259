/**
 * Rocky Linux 8. The Packer templates start without a host-made disk: the official ISO with a
 * kickstart served by Packer's HTTP server (qemu builder), or a clone of the hypervisor's vanilla
 * volume (libvirt builder). The chroot builder starts from a vanilla disk made on this machine with
 * `dnf --installroot` (rocky-bootstrap.ts). The build points the repo files at the configured mirrors.
 */

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import type { CreatedBundle } from '../patches/bundle.js';
import { createRpmBundle } from '../patches/rpm.js';
import type { SigningKey } from '../signing/project-keys.js';
import { DISK_TOOLS, vanillaDiskFromTar } from './disk-image.js';
import type { BootstrapContext, Distro } from './distro.js';
import {
  checkRockyBootstrap,
  dnfInstallRoot,
  finishRockyRoot,
  ROCKY_BASE_PACKAGES,
  ROCKY_BOOT_CHAIN,
  ROCKY_OVERLAY,
  ROCKY_VANILLA_SERVICES,
  rockyBootstrapRepoFile,
} from './rocky-bootstrap.js';
import { VANILLA_OVERLAY } from './vanilla-overlay.js';

/** Serial console, predictable names off (eth0, as the vanilla overlay's DHCP expects). */
export const ROCKY_KERNEL_ARGS = 'console=tty0 console=ttyS0,115200n8 net.ifnames=0';

/** "8.10" → "8". */
export function rockyMajor(pointRelease: string): string {
  return pointRelease.split('.')[0] ?? pointRelease;
}

/** Inputs of a Rocky --create-patches bundle (the rpm format of issue 3). */
export interface RockyPatchInput {
  /** `rpm -qa` NEVRA list the image's cleanup role fetched (rpm_nevra_file). */
  installedFile: string;
  /** Source repositories (baseurl) that the updates come from: the configured mirrors. */
  repos: { id: string; baseurl: string }[];
  workDir: string;
  id: string;
  image: string;
  artifact: string;
  log: Logger;
  signal: AbortSignal;
}

/**
 * A Rocky --create-patches bundle: the image's `rpm -qa` NEVRA list against the configured mirrors,
 * security advisories only (as `dnf updateinfo --security`), as an rpm repository (createRpmBundle).
 */
export async function createRockyPatchBundle(
  i: RockyPatchInput & {
    suite: string;
    repoDirName: string;
    signingKey?: SigningKey;
    onDetail?: (t: string) => void;
  },
): Promise<CreatedBundle> {
  const nevra = (await readFile(i.installedFile, 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (nevra.length === 0) {
    throw new UserError(
      'E_NO_RPM_LIST',
      `the image's package list ${i.installedFile} is empty`,
      'the template must download `rpm -qa` NEVRA lines to the rpm_nevra_file variable',
    );
  }
  return createRpmBundle({
    installed: { nevra },
    repos: i.repos,
    workDir: i.workDir,
    id: i.id,
    image: i.image,
    artifact: i.artifact,
    distro: 'rocky',
    suite: i.suite,
    repoDirName: i.repoDirName,
    ...(i.signingKey ? { signingKey: i.signingKey } : {}),
    log: i.log,
    signal: i.signal,
    onDetail: i.onDetail,
  });
}

/** The repositories a Rocky patch bundle is computed from (configured mirrors only). */
export function rockyPatchRepos(project: Project): { id: string; baseurl: string }[] {
  const m = project.config.mirrors.rocky;
  return (['baseos', 'appstream', 'powertools', 'epel'] as const)
    .filter((k) => m[k])
    .map((k) => ({ id: k, baseurl: m[k] as string }));
}

export const rocky: Distro = {
  name: 'rocky',
  checkImage(image) {
    return /^8\.\d+$/.test(image.config.suite)
      ? []
      : [
          {
            path: 'suite',
            message: `"${image.config.suite}" is not a Rocky 8 point release: use e.g. suite: "8.10"`,
          },
        ];
  },
  vanilla: 'template',

  vanillaInputs(project, image) {
    return {
      distro: 'rocky',
      release: image.config.suite,
      packages: [...new Set([...ROCKY_BASE_PACKAGES, ...image.config.vanilla.packages])].sort(),
      repos: rockyBootstrapRepoFile(project),
      diskSize: image.config.vm.diskSize ?? project.config.vm.diskSize,
      kernelArgs: ROCKY_KERNEL_ARGS,
      bootChain: ROCKY_BOOT_CHAIN,
      overlay: VANILLA_OVERLAY,
      rockyOverlay: ROCKY_OVERLAY,
    };
  },

  vanillaTools: ['dnf', 'systemctl', ...DISK_TOOLS],

  checkBootstrap: checkRockyBootstrap,

  async bootstrapVanilla(ctx: BootstrapContext, dest: string) {
    const { project, image, log, signal, workDir } = ctx;
    checkRockyBootstrap(project, image);
    const root = join(workDir, 'root');
    ctx.progress(`dnf --installroot (Rocky ${image.config.suite})`);
    await dnfInstallRoot({
      root,
      confDir: join(workDir, 'dnf'),
      repoFile: rockyBootstrapRepoFile(project),
      releasever: image.config.suite,
      packages: [...new Set([...ROCKY_BASE_PACKAGES, ...image.config.vanilla.packages])],
      log,
      signal,
      echo: ctx.debug,
    });
    await finishRockyRoot({
      root,
      overlay: VANILLA_OVERLAY,
      services: [...ROCKY_VANILLA_SERVICES, 'osbake-ssh-hostkeys.service', 'osbake-fwcfg-keys.service'],
      log,
      signal,
    });
    const tar = join(workDir, 'rootfs.tar');
    await run(['tar', '-cpf', tar, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', root, '.'], {
      log,
      signal,
    });
    await rm(root, { recursive: true, force: true });
    await vanillaDiskFromTar({
      rootfsTar: tar,
      workDir,
      dest,
      size: image.config.vm.diskSize ?? project.config.vm.diskSize,
      hostname: image.name,
      kernelArgs: ROCKY_KERNEL_ARGS,
      bootChain: ROCKY_BOOT_CHAIN,
      distributor: 'Rocky',
      log,
      signal,
      progress: ctx.progress,
      echo: ctx.debug,
      seed: ctx.seed,
    });
  },

  checkPatchSources(project, image) {
    if (rockyPatchRepos(project).length === 0) {
      throw new UserError(
        'E_NO_RPM_MIRROR',
        `--create-patches on ${image.name} needs the repositories the updates come from`,
        'set mirrors.rocky.baseos / .appstream (and .epel, .powertools) in osbake.yaml',
      );
    }
  },

  createPatchBundle(i) {
    return createRockyPatchBundle({
      installedFile: i.stateFile,
      repos: rockyPatchRepos(i.project),
      workDir: i.workDir,
      id: i.id,
      image: i.image.name,
      artifact: i.artifact,
      suite: i.image.config.suite,
      repoDirName: `Rocky${rockyMajor(i.image.config.suite)}`,
      signingKey: i.signingKey,
      log: i.log,
      signal: i.signal,
      onDetail: i.onDetail,
    });
  },

  // systemctl in a chroot does not start services, and dnf's scriptlets use systemctl.
  chrootGuards: {},

  buildVariables(project, image) {
    const m = project.config.mirrors.rocky;
    return {
      rocky_version: image.config.suite,
      rocky_baseos_mirror: m.baseos ?? '',
      rocky_appstream_mirror: m.appstream ?? '',
      rocky_powertools_mirror: m.powertools ?? '',
      rocky_epel_mirror: m.epel ?? '',
    };
  },

  packageState: { variable: 'rpm_nevra_file', file: 'rpm-nevra.txt' },

  repoDirName(image: ImageDefinition) {
    return `Rocky${rockyMajor(image.config.suite)}`;
  },

  sbomDistro(image) {
    return { distro: 'rocky', version: image.config.suite, purlType: 'rpm' };
  },
};
