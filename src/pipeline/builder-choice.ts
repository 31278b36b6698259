/** Which Packer builder and which hypervisor a build uses: --builder, --hypervisor, osbake.yaml (pure). */
import type { BuilderType } from '../builders/packer/vars.js';
import type { Hypervisor, Project } from '../config/project.js';
import { UserError } from '../errors.js';

export const BUILDERS: readonly BuilderType[] = ['qemu', 'libvirt'];

export interface BuilderChoice {
  builder: BuilderType;
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
  if (o.builder !== undefined && !(BUILDERS as readonly string[]).includes(o.builder)) {
    throw new UserError(
      'E_USAGE',
      `--builder ${o.builder} is not one of ${BUILDERS.join(', ')}`,
      'use --builder qemu (local QEMU) or --builder libvirt (a configured hypervisor)',
    );
  }
  const builder = (o.builder ?? (o.hypervisor ? 'libvirt' : project.config.builder.type)) as BuilderType;
  if (builder === 'qemu') {
    if (o.hypervisor) {
      throw new UserError(
        'E_USAGE',
        `--hypervisor ${o.hypervisor} needs the libvirt builder, not qemu`,
        'drop --builder qemu, or drop --hypervisor',
      );
    }
    return { builder };
  }
  const hvs = project.config.hypervisors;
  if (hvs.length === 0) {
    throw new UserError(
      'E_NO_HYPERVISORS',
      `the libvirt builder needs a hypervisor, and ${project.file} lists none`,
      'add one under hypervisors: (name, uri: qemu+ssh://root@HOST/system, sshKey, pool, vanillaVolume), or use --builder qemu',
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
