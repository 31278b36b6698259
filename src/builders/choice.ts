/**
 * Which builder and which hypervisor a build uses: --hypervisor, --builder, osbake.yaml builder.type
 * (pure), then `auto` resolved by the KVM probe: Packer qemu with KVM, chroot without it.
 */

import type { ImageConfig } from '../config/image.js';
import type { Hypervisor, Project } from '../config/project.js';
import { UserError } from '../errors.js';
import type { AcceleratorChoice } from './accel.js';
import { type BuilderType, DISK_BUILDER_TYPES, type DiskBuilderType } from './builder.js';

export type RequestedBuilder = DiskBuilderType | 'auto';
export const BUILDER_CHOICES: readonly RequestedBuilder[] = ['auto', ...DISK_BUILDER_TYPES];

export interface BuilderChoice {
  builder: RequestedBuilder;
  /** Set for libvirt builds. */
  hypervisor?: Hypervisor;
}

/**
 * --hypervisor NAME implies libvirt; otherwise --builder, else osbake.yaml builder.type. A libvirt
 * build without --hypervisor runs on the first configured hypervisor (build --all spreads them).
 */
export function chooseBuilder(
  project: Pick<Project, 'config' | 'file'>,
  o: { builder?: string; hypervisor?: string },
): BuilderChoice {
  if (o.builder !== undefined && !(BUILDER_CHOICES as readonly string[]).includes(o.builder)) {
    throw new UserError(
      'E_USAGE',
      `--builder ${o.builder} is not one of ${BUILDER_CHOICES.join(', ')}`,
      'use --builder chroot (no VM), qemu (local Packer VM), libvirt (a configured hypervisor) or auto',
    );
  }
  const builder = (o.builder ?? (o.hypervisor ? 'libvirt' : project.config.builder.type)) as RequestedBuilder;
  if (builder !== 'libvirt') {
    if (o.hypervisor) {
      throw new UserError(
        'E_USAGE',
        `--hypervisor ${o.hypervisor} needs the libvirt builder, not ${builder}`,
        `drop --builder ${builder}, or drop --hypervisor`,
      );
    }
    return { builder };
  }
  const hvs = project.config.hypervisors;
  if (hvs.length === 0) {
    throw new UserError(
      'E_NO_HYPERVISORS',
      `the libvirt builder needs a hypervisor, and ${project.file} lists none`,
      'add one under hypervisors: (name, uri: qemu+ssh://root@HOST/system, sshKey, knownHosts, pool), or use --builder chroot or qemu',
    );
  }
  if (o.hypervisor === undefined) return { builder, hypervisor: hvs[0] };
  const h = hvs.find((x) => x.name === o.hypervisor);
  if (!h) {
    throw new UserError(
      'E_NO_HYPERVISOR',
      `no hypervisor named "${o.hypervisor}" in ${project.file}`,
      `configured hypervisors: ${hvs.map((x) => x.name).join(', ')}`,
    );
  }
  return { builder, hypervisor: h };
}

/** `auto` → qemu when KVM works, else chroot (a TCG VM installs packages 30-40× slower than a chroot). */
export function resolveAutoBuilder(
  requested: RequestedBuilder,
  accel: AcceleratorChoice | undefined,
): { builder: DiskBuilderType; reason: string } {
  if (requested !== 'auto') return { builder: requested, reason: 'requested' };
  if (accel?.accelerator === 'kvm') return { builder: 'qemu', reason: `auto: KVM works (${accel.reason})` };
  return { builder: 'chroot', reason: `auto: no KVM (${accel?.reason ?? 'not probed'}), so no VM: chroot` };
}

/** Does this choice run a VM that needs the accelerator probed (the qemu builder, or auto)? (pure) */
export function choiceNeedsAccelerator(choice: Pick<BuilderChoice, 'builder'>): boolean {
  return choice.builder === 'qemu' || choice.builder === 'auto';
}

/** Does this choice build on configured hypervisors (libvirt) rather than on this machine? (pure) */
export function choiceUsesHypervisors(choice: Pick<BuilderChoice, 'builder'>): boolean {
  return choice.builder === 'libvirt';
}

type ImageKind = ImageConfig['kind'];

/**
 * The builder that runs an image (pure): the installer builder for image.yaml kind: installer
 * (whatever --builder or osbake.yaml chose for disk images: build --all passes them to every image),
 * else the chosen disk builder with `auto` resolved.
 */
export function resolveBuilder(
  kind: ImageKind,
  requested: RequestedBuilder,
  accel: AcceleratorChoice | undefined,
): { builder: BuilderType; reason: string } {
  if (kind === 'installer') return { builder: 'installer', reason: 'image.yaml kind: installer' };
  return resolveAutoBuilder(requested, accel);
}

/** Does the build run a VM on this machine whose accelerator must be probed first? (pure) */
export function buildNeedsAccelerator(
  kind: ImageKind,
  choice: Pick<BuilderChoice, 'builder'>,
  noTest: boolean | undefined,
): boolean {
  if (kind === 'installer') return false;
  return choiceNeedsAccelerator(choice) || !noTest;
}

/** The request's options that depend on the image's kind (pure; bad input before any work). */
export function checkKindOptions(
  kind: ImageKind,
  o: { image: string; release?: string; createPatches?: boolean; packageFile?: string },
): void {
  if (kind === 'installer') {
    if (!o.release || o.createPatches) {
      throw new UserError(
        'E_USAGE',
        `${o.image} is an installer: it needs --release <R> (the release whose image it carries) and no --create-patches`,
        `e.g. osbake build ${o.image} --release 2026.11`,
      );
    }
    return;
  }
  if (o.packageFile) {
    throw new UserError(
      'E_USAGE',
      `--package is for installer images; ${o.image} is a disk image (image.yaml kind: ${kind})`,
      'e.g. osbake build usb-installer --release 2026.11 --package site.tar.gz',
    );
  }
}
