import { describe, expect, it } from 'vitest';
import { ProjectConfigSchema } from '../config/project.js';
import { buildHosts } from './run-build-all.js';

const hv = (name: string) => ({
  name,
  uri: `qemu+ssh://root@${name}/system`,
  sshKey: '/k',
  vanillaVolume: 'v',
});
const project = (cfg: object) => ({ config: ProjectConfigSchema.parse(cfg), file: '/p/osbake.yaml' });

describe('buildHosts', () => {
  it('this machine alone for the qemu builder, even with hypervisors configured', () => {
    expect(buildHosts(project({ hypervisors: [hv('a')] }), {})).toEqual([{ name: 'local' }]);
  });

  it('every hypervisor for libvirt, or the one named', () => {
    const p = project({ builder: { type: 'libvirt' }, hypervisors: [hv('a'), hv('b')] });
    expect(buildHosts(p, {})).toEqual([
      { name: 'a', hypervisor: 'a', slot: 0 },
      { name: 'b', hypervisor: 'b', slot: 0 },
    ]);
    expect(buildHosts(p, { hypervisor: 'b' })).toEqual([{ name: 'b', hypervisor: 'b', slot: 0 }]);
  });

  it('a hypervisor with two slots is two hosts of one name', () => {
    const p = project({ builder: { type: 'libvirt' }, hypervisors: [{ ...hv('a'), slots: 2 }, hv('b')] });
    expect(buildHosts(p, {}).map((h) => `${h.name}/${h.slot}`)).toEqual(['a/0', 'a/1', 'b/0']);
  });
});
