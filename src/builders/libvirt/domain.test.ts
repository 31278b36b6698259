import { describe, expect, it } from 'vitest';
import { HypervisorSchema } from '../../config/project.js';
import {
  domainXml,
  isNoDomain,
  isOsbakeVolume,
  isPortClash,
  overlayVolumeName,
  parseDomainMeta,
  vanillaMarkerName,
  vanillaVolumeName,
} from './domain.js';
import {
  forwardedPort,
  guestEnterCommand,
  guestMasterArgs,
  guestProxyCommand,
  hypervisorSshArgv,
} from './guest-ssh.js';

import { probeDomainXml } from './remote-accel.js';
import { parseVolList, transferLine } from './virsh.js';

const hv = HypervisorSchema.parse({
  name: 'kvm1',
  uri: 'qemu+ssh://root@kvm1:2222/system',
  sshKey: '/k/id',
  knownHosts: '/k/known hosts',
});

const meta = {
  buildId: 'abc-123',
  image: 'debian12-base',
  volumes: [overlayVolumeName('abc-123')],
  machine: 'builder<&>',
  pid: 4242,
  created: '2026-12-07T05:00:00.000Z',
};

describe('the domain osbake defines', () => {
  const xml = domainXml({
    name: 'osbake-build-abc-123',
    type: 'qemu',
    memoryMiB: 2048,
    cpus: 2,
    pool: 'images',
    volume: overlayVolumeName('abc-123'),
    authorizedKey: "ssh-ed25519 AAAA root@host'<x>\n",
    sshPort: 34567,
    consoleLog: '/var/log/libvirt/qemu/osbake-build-abc-123.serial.log',
    meta,
  });

  it('is TCG, forwards SSH to the loopback only and passes the key escaped through fw_cfg', () => {
    expect(xml).toMatch(/^<domain type='qemu'/);
    expect(xml).toContain("value='user,id=osbake0,hostfwd=tcp:127.0.0.1:34567-:22'");
    expect(xml).toContain(
      "<entry name='opt/osbake/authorized_keys'>ssh-ed25519 AAAA root@host&apos;&lt;x&gt;</entry>",
    );
    expect(xml).toContain("<source pool='images' volume='osbake-build-abc-123.qcow2'/>");
  });

  it('carries metadata that reads back, from dumpxml and from virsh metadata alike', () => {
    expect(parseDomainMeta(xml)).toEqual(meta);
    const alone = `<build xmlns="https://osbake.dev/libvirt/1" id="abc-123" image="debian12-base" volumes="osbake-build-abc-123.qcow2 /etc/passwd" machine="builder&lt;&amp;&gt;" pid="4242" created="2026-12-07T05:00:00.000Z"/>`;
    // A volume name that is not osbake's own is never taken from the metadata.
    expect(parseDomainMeta(alone)).toEqual(meta);
    expect(parseDomainMeta("<domain type='kvm'><name>web</name></domain>")).toBeUndefined();
    expect(parseDomainMeta('<not xml')).toBeUndefined();
    expect(
      parseDomainMeta(probeDomainXml('osbake-probe-1', 'images', 'osbake-build-probe1.qcow2')),
    ).toMatchObject({
      image: 'kvm-probe',
      volumes: ['osbake-build-probe1.qcow2'],
    });
  });

  it("names only osbake's volumes as its own", () => {
    const sha = 'd854a8cc8122b69e0123456789abcdef0123456789abcdef0123456789abcdef';
    expect(vanillaVolumeName(sha)).toBe('osbake-vanilla-d854a8cc8122b69e.qcow2');
    expect(isOsbakeVolume(vanillaVolumeName(sha))).toBe(true);
    expect(isOsbakeVolume(vanillaMarkerName(sha))).toBe(true);
    expect(isOsbakeVolume(overlayVolumeName('x1'))).toBe(true);
    for (const n of ['web.qcow2', 'osbake-vanilla-zz.qcow2', 'osbake-build-../x.qcow2', 'osbake-build-a.img'])
      expect(isOsbakeVolume(n)).toBe(false);
  });
});

describe('reaching the build VM through the hypervisor', () => {
  it('pins the hop and nests a bastion with %% escaping', () => {
    expect(hypervisorSshArgv(hv)).toEqual([
      'ssh',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'UserKnownHostsFile=/k/known hosts',
      '-o',
      'StrictHostKeyChecking=yes',
      '-i',
      '/k/id',
      '-p',
      '2222',
      'root@kvm1',
    ]);
    expect(guestProxyCommand(hv)).toBe(
      "ssh -o BatchMode=yes -o ConnectTimeout=10 -o 'UserKnownHostsFile=/k/known hosts' -o StrictHostKeyChecking=yes -i /k/id -p 2222 -W %h:%p root@kvm1",
    );
    const viaBastion = guestProxyCommand({ ...hv, bastion: 'jump@gw:22' }) as string;
    expect(viaBastion).toContain('%%h:%%p jump@gw');
    expect(viaBastion).toMatch(/-W %h:%p root@kvm1$/);
    expect(guestProxyCommand({ ...hv, uri: 'qemu:///system' })).toBeUndefined();
  });

  it('forwards the patch bundle port back into the guest from the master', () => {
    const g = { key: '/w/build_key', port: 40000, control: '/tmp/c' };
    const argv = guestMasterArgs(hv, g, 8123);
    expect(argv).toContain('127.0.0.1:8123:127.0.0.1:8123');
    expect(argv).toContain('ExitOnForwardFailure=yes');
    expect(argv.slice(-2)).toEqual(['-N', 'root@127.0.0.1']);
    expect(guestEnterCommand(hv, g)).toMatch(
      /^ssh -i \/w\/build_key -p 40000 .*ProxyCommand=ssh .* root@127\.0\.0\.1$/,
    );
    expect(forwardedPort('http://127.0.0.1:8123/')).toBe(8123);
    expect(forwardedPort('')).toBeUndefined();
  });
});

describe("virsh's answers", () => {
  it('reads vol-list, port clashes, vanished domains and transfer lines', () => {
    expect(
      parseVolList(
        ' osbake-vanilla-d854a8cc8122b69e.qcow2   /var/lib/p/osbake-vanilla-d854a8cc8122b69e.qcow2\n web.img  /var/lib/p/web.img\n',
      ),
    ).toEqual(['osbake-vanilla-d854a8cc8122b69e.qcow2', 'web.img']);
    expect(isPortClash(['error: internal error: Could not set up host forwarding rule'])).toBe(true);
    expect(isPortClash(['error: Storage volume not found'])).toBe(false);
    expect(isNoDomain(["error: failed to get domain 'osbake-build-x'"])).toBe(true);
    expect(transferLine('up', 50 * 2 ** 20, 100 * 2 ** 20, 1000)).toBe(
      'up: 50.0 MiB of 100.0 MiB (50 %), 50.0 MiB/s, 1 s left',
    );
  });
});
