/**
 * The libvirt preflight with real tools, failures only (the builds themselves: libvirt-build.test.ts): a real sshd (key accepted and
 * refused), ssh to a closed port, the real Packer (1.6.6 cannot load plugins), virsh without a
 * daemon, and libvirt's built-in test driver standing in for a hypervisor's pools and volumes.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLibvirtHost, virshArgs } from '../../src/builders/libvirt/preflight.js';
import { downloadVolumeTo, parseVolInfoBytes } from '../../src/builders/libvirt/virsh.js';
import { findPacker } from '../../src/builders/packer/packer.js';
import { type Hypervisor, HypervisorSchema } from '../../src/config/project.js';
import { UserError } from '../../src/errors.js';
import { createNullLogger } from '../../src/log/logger.js';
import { freePort, waitForSshBanner } from './helpers.js';

const log = createNullLogger();

async function userErrorOf(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

describe('libvirt preflight against real ssh, sshd, virsh and Packer', () => {
  let work: string;
  let key: string;
  let sshd: ChildProcess | undefined;
  let sshdPort = 0;
  const hv = (over: Partial<Hypervisor>): Hypervisor =>
    HypervisorSchema.parse({
      name: 'kvm1',
      uri: 'qemu+ssh://root@127.0.0.1:1/system',
      sshKey: key,
      knownHosts: join(work, 'known_hosts'),
      vanillaVolume: 'rocky8-vanilla.qcow2',
      ...over,
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'osbake-lv-'));
    key = join(work, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'host_key')]);
    await writeFile(join(work, 'authorized_keys'), await readFile(`${key}.pub`));
    sshdPort = await freePort();
    const hostPub = (await readFile(join(work, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(join(work, 'known_hosts'), `[127.0.0.1]:${sshdPort} ${hostPub}\n`);
    await writeFile(
      join(work, 'sshd_config'),
      [
        `Port ${sshdPort}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(work, 'host_key')}`,
        `AuthorizedKeysFile ${join(work, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        // A host where SSH works but libvirt cannot be reached (a libvirtd may run on this machine
        // for the libvirt build test): neither virt-ssh-helper nor nc is found on its PATH.
        'SetEnv PATH=/nonexistent',
        'StrictModes no',
        'UsePAM no',
        `PidFile ${join(work, 'sshd.pid')}`,
        '',
      ].join('\n'),
    );
    await mkdir('/run/sshd', { recursive: true });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(work, 'sshd_config')], { stdio: 'ignore' });
    expect(await waitForSshBanner(sshdPort, 15_000)).toBe(true);
  });
  afterAll(async () => {
    sshd?.kill('SIGTERM');
    await rm(work, { recursive: true, force: true });
  });

  it('Packer 1.6.6 here: refused with how to get a Packer that loads the plugin', async () => {
    const packer = await findPacker(log);
    const e = await userErrorOf(checkLibvirtHost(hv({}), { log, packer }));
    expect(e.code).toBe('E_PACKER_TOO_OLD');
    expect(e.message).toBe(
      `Packer ${packer.text} cannot load plugins; the libvirt builder needs Packer >= 1.7 with packer-plugin-libvirt`,
    );
    expect(e.hint).toMatch(/packer plugins install github.com\/thomasklein94\/libvirt/);
  });

  it('an unreachable hypervisor: one line naming host, port and the reason', async () => {
    const port = await freePort();
    const h = hv({ uri: `qemu+ssh://root@127.0.0.1:${port}/system` });
    const e = await userErrorOf(checkLibvirtHost(h, { log }));
    expect(e.code).toBe('E_HYPERVISOR_SSH');
    expect(e.message).toMatch(
      new RegExp(`^hypervisor kvm1: cannot log in over SSH to root@127.0.0.1:${port}: .*Connection refused`),
    );
    expect(e.message).not.toContain('\n');
    expect(e.hint).toMatch(/ssh-keyscan 127.0.0.1/);
  });

  it('a key the hypervisor does not accept', async () => {
    const other = join(work, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const h = hv({ uri: `qemu+ssh://root@127.0.0.1:${sshdPort}/system`, sshKey: other });
    const e = await userErrorOf(checkLibvirtHost(h, { log }));
    expect(e.code).toBe('E_HYPERVISOR_SSH');
    expect(e.message).toMatch(/Permission denied/);
  });

  it('SSH works (real sshd) but libvirt does not answer there: the next check names the URI', async () => {
    const steps: string[] = [];
    const h = hv({
      uri: `qemu+ssh://root@127.0.0.1:${sshdPort}/system`,
      bastion: `root@127.0.0.1:${sshdPort}`,
    });
    const e = await userErrorOf(checkLibvirtHost(h, { log, progress: (t) => steps.push(t) }));
    expect(steps.slice(0, 3)).toEqual([
      `ssh root@127.0.0.1:${sshdPort}`,
      `ssh bastion root@127.0.0.1:${sshdPort}`,
      `virsh -c qemu+ssh://root@127.0.0.1:${sshdPort}/system version`,
    ]);
    expect(e.code).toBe('E_LIBVIRT_CONNECT');
    expect(e.message).toMatch(
      new RegExp(
        `^hypervisor kvm1: libvirt does not answer on qemu\\+ssh://root@127.0.0.1:${sshdPort}/system: \\S`,
      ),
    );
    expect(e.message).not.toContain('\n');
  });

  it('no libvirt daemon on a local URI: virsh fails and says so in one line', async () => {
    // A socket nobody listens on (a libvirtd may run for the libvirt build test meanwhile).
    const uri = `qemu:///system?socket=${join(work, 'no-libvirtd.sock')}`;
    const e = await userErrorOf(checkLibvirtHost({ ...hv({ uri: 'qemu:///system' }), uri }, { log }));
    expect(e.code).toBe('E_LIBVIRT_CONNECT');
    expect(e.message).toMatch(
      /^hypervisor kvm1: libvirt does not answer on qemu:\/\/\/system\?socket=\S+: .*(socket|No such file)/,
    );
    expect(e.hint).toMatch(/libvirtd \(or virtqemud\)/);
  });
});

/** libvirt's built-in test driver (no daemon): a node with pool "images" holding the vanilla volume. */
const TEST_NODE = `<node>
  <pool type='dir'>
    <name>images</name>
    <uuid>35bb2ad9-388a-cdfe-461a-b8907f6e53fe</uuid>
    <capacity>107374182400</capacity>
    <allocation>0</allocation>
    <available>107374182400</available>
    <target><path>/var/lib/libvirt/images</path></target>
    <volume type='file'>
      <name>rocky8-vanilla.qcow2</name>
      <capacity unit='G'>8</capacity>
      <allocation unit='M'>900</allocation>
      <target><path>/var/lib/libvirt/images/rocky8-vanilla.qcow2</path><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
`;

describe("virsh against libvirt's test driver (pool and volume checks, vol-info parsing)", () => {
  let work: string;
  let h: Hypervisor;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'osbake-lvt-'));
    await writeFile(join(work, 'node.xml'), TEST_NODE);
    // The schema accepts only qemu URIs; the test driver stands in for the hypervisor's libvirtd.
    h = {
      ...HypervisorSchema.parse({
        name: 'testnode',
        uri: 'qemu:///system',
        sshKey: '/unused',
        pool: 'images',
        engine: 'packer',
        vanillaVolume: 'rocky8-vanilla.qcow2',
      }),
      uri: `test://${join(work, 'node.xml')}`,
    };
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('passes when libvirt answers and the pool and the vanilla volume exist', async () => {
    const steps: string[] = [];
    await checkLibvirtHost(h, { log, progress: (t) => steps.push(t) });
    expect(steps).toEqual([
      `virsh -c ${h.uri} version`,
      'virsh pool-info images',
      'virsh vol-info --pool images rocky8-vanilla.qcow2',
    ]);
  });

  it("a missing pool: one line with libvirt's reason and how to list the pools", async () => {
    const e = await userErrorOf(checkLibvirtHost({ ...h, pool: 'nosuch' }, { log }));
    expect(e.code).toBe('E_LIBVIRT_POOL');
    expect(e.message).toBe(
      'hypervisor testnode: storage pool "nosuch" is not usable: error: Storage pool not found: no storage pool with matching name \'nosuch\'',
    );
    expect(e.hint).toMatch(/pool-list --all/);
  });

  it('a missing vanilla volume: one line naming volume and pool, and how to upload it', async () => {
    const e = await userErrorOf(checkLibvirtHost({ ...h, vanillaVolume: 'nope.qcow2' }, { log }));
    expect(e.code).toBe('E_LIBVIRT_VOLUME');
    expect(e.message).toMatch(
      /^hypervisor testnode: vanilla volume "nope.qcow2" is not in pool "images": error: Storage volume not found/,
    );
    expect(e.hint).toMatch(/vol-create-as images nope.qcow2 8G --format qcow2, then vol-upload/);
  });

  it('reads the real vol-info --bytes output; the download is issued as virsh vol-download', async () => {
    const out = execFileSync(
      'virsh',
      virshArgs(h, ['vol-info', '--bytes', '--pool', 'images', 'rocky8-vanilla.qcow2']).slice(1),
      {
        encoding: 'utf8',
      },
    );
    expect(parseVolInfoBytes(out)).toEqual({ capacity: 8 * 2 ** 30, allocation: 900 * 2 ** 20 });
    // The test driver has no volume streams, so the download itself fails here, as virsh says.
    const ac = new AbortController();
    await expect(
      downloadVolumeTo(
        { hypervisor: h, log, signal: ac.signal },
        { volume: 'rocky8-vanilla.qcow2', dest: join(work, 'out.qcow2'), progress: () => undefined },
      ),
    ).rejects.toMatchObject({
      outputTail: expect.arrayContaining([expect.stringMatching(/virStorageVolDownload/)]),
    });
  });
});
