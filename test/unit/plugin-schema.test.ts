import { describe, expect, it } from 'vitest';
import { checkLibvirtSources } from './plugin-schema.js';

/** hcl2json's shape of a small source "libvirt" block. */
const parsed = (body: Record<string, unknown>) => ({ source: { libvirt: { x: [body] } } });
const GOOD = {
  libvirt_uri: '${var.libvirt_uri}',
  network_address_source: 'lease',
  network_interface: [{ type: 'managed', network: 'default', alias: 'communicator' }],
  volume: [{ alias: 'artifact', pool: 'p', source: [{ type: 'cloning', pool: 'p', volume: 'v' }] }],
  communicator: [{ communicator: 'ssh', ssh_username: 'root', ssh_bastion_host: '' }],
};

describe('checkLibvirtSources', () => {
  it('accepts a block that follows the plugin schema', () => {
    expect(checkLibvirtSources(parsed(GOOD))).toEqual({ sources: ['x'], problems: [] });
  });

  it.each([
    [{ ...GOOD, cpus: 2 }, 'source.libvirt.x.cpus: not an argument of packer-plugin-libvirt here'],
    [{ ...GOOD, libvirt_uri: undefined }, 'source.libvirt.x.libvirt_uri: required'],
    [
      { ...GOOD, volume: [{ source: [{ type: 'clone', volume: 'v' }] }] },
      'source.libvirt.x.volume[0].source[0].type: "clone" is not one of backing-store, cloning, cloud-init, external, files',
    ],
    [
      { ...GOOD, volume: [{ source: [{ volume: 'v' }] }] },
      'source.libvirt.x.volume[0].source[0].type: required',
    ],
    [
      { ...GOOD, communicator: [{ ssh_user: 'root' }] },
      'source.libvirt.x.communicator[0].ssh_user: not an argument of packer-plugin-libvirt here',
    ],
    [
      { ...GOOD, network_address_source: 'dhcp' },
      'source.libvirt.x.network_address_source: "dhcp" is not one of agent, lease, arp',
    ],
  ])('reports %#', (body, problem) => {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    expect(checkLibvirtSources(parsed(clean)).problems).toEqual([problem]);
  });

  it('says when there is no libvirt source at all', () => {
    expect(checkLibvirtSources({ source: { qemu: {} } }).problems).toEqual(['no source "libvirt" block']);
  });
});
