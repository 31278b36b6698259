import { describe, expect, it } from 'vitest';
import { type Project, ProjectConfigSchema } from '../config/project.js';
import { UserError } from '../errors.js';
import {
  buildNeedsAccelerator,
  checkKindOptions,
  chooseBuilder,
  resolveAutoBuilder,
  resolveBuilder,
} from './choice.js';

const project = (cfg: object): Pick<Project, 'config' | 'file'> => ({
  config: ProjectConfigSchema.parse(cfg),
  file: '/p/osbake.yaml',
});
const hv = (name: string) => ({
  name,
  uri: `qemu+ssh://root@${name}/system`,
  sshKey: '/k',
  vanillaVolume: 'v.qcow2',
});

describe('chooseBuilder', () => {
  it('defaults to osbake.yaml builder.type', () => {
    expect(chooseBuilder(project({}), {})).toEqual({ builder: 'auto' });
    expect(chooseBuilder(project({}), { builder: 'chroot' })).toEqual({ builder: 'chroot' });
    const p = project({ builder: { type: 'libvirt' }, hypervisors: [hv('a'), hv('b')] });
    expect(chooseBuilder(p, {}).hypervisor?.name).toBe('a');
    expect(chooseBuilder(p, { builder: 'qemu' })).toEqual({ builder: 'qemu' });
  });

  it('--hypervisor implies libvirt and picks that host', () => {
    const p = project({ hypervisors: [hv('a'), hv('b')] });
    expect(chooseBuilder(p, { hypervisor: 'b' })).toMatchObject({
      builder: 'libvirt',
      hypervisor: { name: 'b' },
    });
  });

  it.each([
    [{}, { builder: 'docker' }, /--builder docker is not one of auto, qemu, libvirt, chroot/],
    [{}, { builder: 'libvirt' }, /the libvirt builder needs a hypervisor, and \/p\/osbake.yaml lists none/],
    [{ hypervisors: [hv('a')] }, { hypervisor: 'zz' }, /no hypervisor named "zz"/],
    [
      { hypervisors: [hv('a')] },
      { builder: 'qemu', hypervisor: 'a' },
      /--hypervisor a needs the libvirt builder/,
    ],
  ])('refuses %j %j', (cfg, o, re) => {
    expect(() => chooseBuilder(project(cfg), o)).toThrow(re);
  });
});

describe('resolveAutoBuilder', () => {
  const kvm = { accelerator: 'kvm' as const, reason: 'KVM probe guest ran' };
  const tcg = { accelerator: 'tcg' as const, reason: 'no vmx/svm' };
  it.each([
    ['auto', kvm, 'qemu', /KVM works/],
    ['auto', tcg, 'chroot', /no KVM \(no vmx\/svm\), so no VM: chroot/],
    ['auto', undefined, 'chroot', /not probed/],
    ['qemu', tcg, 'qemu', /requested/],
    ['chroot', kvm, 'chroot', /requested/],
    ['libvirt', tcg, 'libvirt', /requested/],
  ] as const)('%s with %j → %s', (req, accel, want, why) => {
    const r = resolveAutoBuilder(req, accel);
    expect(r.builder).toBe(want);
    expect(r.reason).toMatch(why);
  });
});

describe('the image kind chooses first', () => {
  const tcg = { accelerator: 'tcg' as const, reason: 'no /dev/kvm' };
  it('an installer is built by the installer builder, whatever was chosen for disk images', () => {
    for (const requested of ['auto', 'chroot', 'qemu', 'libvirt'] as const) {
      expect(resolveBuilder('installer', requested, tcg)).toEqual({
        builder: 'installer',
        reason: 'image.yaml kind: installer',
      });
    }
    expect(resolveBuilder('image', 'auto', tcg).builder).toBe('chroot');
    expect(resolveBuilder('image', 'qemu', undefined)).toEqual({ builder: 'qemu', reason: 'requested' });
  });

  it('probes the accelerator only for a build that runs a VM here', () => {
    expect(buildNeedsAccelerator('installer', { builder: 'auto' }, false)).toBe(false);
    expect(buildNeedsAccelerator('image', { builder: 'chroot' }, false)).toBe(true);
    expect(buildNeedsAccelerator('image', { builder: 'chroot' }, true)).toBe(false);
    expect(buildNeedsAccelerator('image', { builder: 'qemu' }, true)).toBe(true);
  });

  it('refuses options that do not fit the kind, with a hint', () => {
    const fail = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e as UserError;
      }
      throw new Error('no error');
    };
    const noRelease = fail(() => checkKindOptions('installer', { image: 'usb' }));
    expect(noRelease).toBeInstanceOf(UserError);
    expect(noRelease.message).toContain('usb is an installer: it needs --release <R>');
    expect(
      fail(() => checkKindOptions('installer', { image: 'usb', release: 'r', createPatches: true })).code,
    ).toBe('E_USAGE');
    expect(() =>
      checkKindOptions('installer', { image: 'usb', release: 'r', packageFile: 'f' }),
    ).not.toThrow();
    const pkg = fail(() => checkKindOptions('image', { image: 'base', release: 'r', packageFile: 'f' }));
    expect(pkg.message).toBe(
      '--package is for installer images; base is a disk image (image.yaml kind: image)',
    );
    expect(pkg.hint).toContain('--package');
    expect(() => checkKindOptions('image', { image: 'base', createPatches: true })).not.toThrow();
  });
});
