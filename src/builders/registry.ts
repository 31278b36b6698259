/** The builders osbake knows: one line each. */
import type { Hypervisor } from '../config/project.js';
import type { Builder, BuilderType } from './builder.js';
import { createChrootBuilder } from './chroot/chroot-builder.js';
import { createInstallerBuilder } from './installer/installer-builder.js';
import { createVirshBuilder } from './libvirt/libvirt-builder.js';
import { createLibvirtBuilder, createQemuBuilder } from './packer/packer-builder.js';

export interface BuilderSettings {
  /** The hypervisor a libvirt build runs on. */
  hypervisor?: Hypervisor;
  /** --package FILE: put on an installer's stick. */
  packageFile?: string;
}

const REGISTRY: Record<BuilderType, (s: BuilderSettings) => Builder> = {
  qemu: () => createQemuBuilder(),
  libvirt: (s) => {
    if (!s.hypervisor) throw new Error('the libvirt builder needs a hypervisor');
    return s.hypervisor.engine === 'packer'
      ? createLibvirtBuilder(s.hypervisor)
      : createVirshBuilder(s.hypervisor);
  },
  chroot: () => createChrootBuilder(),
  installer: (s) => createInstallerBuilder({ packageFile: s.packageFile }),
};

export function createBuilder(type: BuilderType, s: BuilderSettings = {}): Builder {
  return REGISTRY[type](s);
}
