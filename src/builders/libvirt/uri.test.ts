import { describe, expect, it } from 'vitest';
import { HypervisorSchema } from '../../config/project.js';
import { parseSshAddress, sshTargetOfLibvirtUri } from '../../config/ssh-target.js';
import { checkPackerForLibvirt, lastLine, pluginListed, sshProbeArgs, virshArgs } from './preflight.js';
import { expandHome, pluginLibvirtUri, virshUri } from './uri.js';
import { parseVolInfoBytes, volumeDownloadArgs } from './virsh.js';

const hv = HypervisorSchema.parse({
  name: 'kvm1',
  uri: 'qemu+ssh://root@kvm1/system',
  sshKey: '/k/id',
  knownHosts: '/k/known_hosts',
  pool: 'images',
  vanillaVolume: 'vanilla.qcow2',
});

describe('libvirt URIs and argv', () => {
  it.each([
    ['qemu+ssh://root@kvm1/system', { user: 'root', host: 'kvm1', port: undefined }],
    ['qemu+ssh://kvm1.example.org:2222/system', { user: undefined, host: 'kvm1.example.org', port: 2222 }],
    ['qemu:///system', undefined],
  ])('ssh target of %s', (uri, target) => {
    expect(sshTargetOfLibvirtUri(uri)).toEqual(target);
  });

  it('parses bastions and expands ~', () => {
    expect(parseSshAddress('gw')).toEqual({ user: undefined, host: 'gw', port: undefined });
    expect(parseSshAddress('a@gw:22')).toEqual({ user: 'a', host: 'gw', port: 22 });
    expect(expandHome('~/.ssh/k', '/home/u')).toBe('/home/u/.ssh/k');
    expect(expandHome('/abs', '/home/u')).toBe('/abs');
  });

  it('adds the plugin and virsh parameters', () => {
    expect(pluginLibvirtUri(hv)).toBe('qemu+ssh://root@kvm1/system?keyfile=/k/id&known_hosts=/k/known_hosts');
    expect(virshUri(hv)).toBe(
      'qemu+libssh://root@kvm1/system?keyfile=/k/id&known_hosts=/k/known_hosts&known_hosts_verify=normal&sshauth=privkey',
    );
    expect(virshUri({ ...hv, uri: 'qemu:///system' })).toBe('qemu:///system');
  });

  it('builds the exact preflight and download argv', () => {
    expect(sshProbeArgs(hv, { user: 'root', host: 'kvm1', port: 2222 })).toEqual([
      'ssh',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=5',
      '-o',
      'UserKnownHostsFile=/k/known_hosts',
      '-o',
      'StrictHostKeyChecking=yes',
      '-i',
      '/k/id',
      '-p',
      '2222',
      'root@kvm1',
      'true',
    ]);
    expect(virshArgs(hv, ['pool-info', 'images'])).toEqual([
      'virsh',
      '-q',
      '-c',
      'qemu+libssh://root@kvm1/system?keyfile=/k/id&known_hosts=/k/known_hosts&known_hosts_verify=normal&sshauth=privkey',
      'pool-info',
      'images',
    ]);
    expect(volumeDownloadArgs(hv, 'a.qcow2', '/w/a.qcow2').slice(4)).toEqual([
      'vol-download',
      '--pool',
      'images',
      '--sparse',
      'a.qcow2',
      '/w/a.qcow2',
    ]);
  });

  it('refuses Packer < 1.7 with the fix', () => {
    expect(() => checkPackerForLibvirt({ major: 1, minor: 6, patch: 6, text: '1.6.6' })).toThrow(
      /Packer 1\.6\.6 cannot load plugins/,
    );
    expect(() => checkPackerForLibvirt({ major: 1, minor: 14, patch: 0, text: '1.14.0' })).not.toThrow();
  });

  it('finds the plugin in `packer plugins installed`', () => {
    expect(
      pluginListed(
        '/root/.config/packer/plugins/github.com/thomasklein94/libvirt/packer-plugin-libvirt_v0.5.0_x5.0_linux_amd64\n',
      ),
    ).toBe(true);
    expect(
      pluginListed('/root/.config/packer/plugins/github.com/hashicorp/qemu/packer-plugin-qemu_v1.1.0\n'),
    ).toBe(false);
  });

  it('reads vol-info --bytes and the last meaningful error line', () => {
    expect(
      parseVolInfoBytes('Name:           a\nCapacity:       8589934592 bytes\nAllocation:     1234 bytes\n'),
    ).toEqual({
      capacity: 8589934592,
      allocation: 1234,
    });
    expect(
      lastLine(['error: failed to connect to the hypervisor', 'error: Cannot recv data: refused', '']),
    ).toBe('error: Cannot recv data: refused');
  });
});
