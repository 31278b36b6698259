/**
 * The installer's identity.sh run by busybox sh (the installer's own shell) on identities rendered
 * by node-identity.ts, against scratch roots laid out as the Debian image (systemd-networkd) and the
 * Rocky image (NetworkManager). The network install test boots a real node with them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canRunIdentitySh, identitySh } from '../../test/identity-sh.js';
import { parseYamlConfig } from '../config/load.js';
import { projectNodes } from '../config/nodes.js';
import { ProjectConfigSchema } from '../config/project.js';
import { identitiesText, identityBlock } from './node-identity.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDkSTpFunTaDA6i4HF4TZcfHXgNjiXG224xtfrOr5s2c ops@site';
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const CONFIG = `
nodes:
  node01:
    mac: 52:54:00:0b:00:01
    target: vda
    then: reboot
    network:
      addresses: [10.0.2.21/24, "fd00::21/64"]
      gateway: 10.0.2.2
      gateway6: fd00::1
      dns: [10.0.2.3, "fd00::3"]
      search: [cluster.example]
    authorizedKeys:
      root: ["${KEY}"]
      admin: ["${KEY}"]
    files:
      - { path: /etc/issue.d/osbake.issue, content: "node01 \\\\4\\n" }
      - { path: /etc/cluster/hosts, source: site/hosts, mode: "0600" }
  node02:
    serial: OSB-0002
    network: { dhcp: true, dns: [10.0.2.3] }
`;

async function scratch(): Promise<{ dir: string; project: string; sys: string; tmp: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'osbake-identity-'));
  dirs.push(dir);
  const project = join(dir, 'project');
  await mkdir(join(project, 'site'), { recursive: true });
  await writeFile(join(project, 'site/hosts'), '10.0.2.21 node01\n10.0.2.22 node02\n');
  const sys = join(dir, 'sys');
  await mkdir(join(sys, 'class/net/eth0/device'), { recursive: true });
  await writeFile(join(sys, 'class/net/eth0/address'), '52:54:00:99:99:99\n');
  await mkdir(join(sys, 'class/dmi/id'), { recursive: true });
  await writeFile(join(sys, 'class/dmi/id/product_serial'), 'OSB-0002\n');
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  return { dir, project, sys, tmp };
}

/** An installed root as the Debian image (networkd, resolved) or the Rocky one (NetworkManager). */
async function installedRoot(dir: string, kind: 'debian' | 'rocky'): Promise<string> {
  const r = join(dir, kind);
  await mkdir(join(r, 'etc'), { recursive: true });
  await writeFile(join(r, 'etc/os-release'), `ID=${kind}\n`);
  await writeFile(
    join(r, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n',
  );
  await mkdir(join(r, 'root'), { mode: 0o700 });
  if (kind === 'debian') {
    await mkdir(join(r, 'usr/lib/systemd'), { recursive: true });
    await writeFile(join(r, 'usr/lib/systemd/systemd-networkd'), '');
    await symlink('../run/systemd/resolve/stub-resolv.conf', join(r, 'etc/resolv.conf'));
  } else {
    await mkdir(join(r, 'usr/sbin'), { recursive: true });
    await writeFile(join(r, 'usr/sbin/NetworkManager'), '', { mode: 0o755 });
  }
  return r;
}

describe.skipIf(!canRunIdentitySh)('installer identity.sh (busybox sh)', () => {
  it('writes a Debian node: systemd-networkd unit, keys per user, files; resolv.conf of resolved left alone', async () => {
    const s = await scratch();
    const nodes = projectNodes(parseYamlConfig('osbake.yaml', CONFIG, ProjectConfigSchema));
    await writeFile(join(s.tmp, 'identity'), await identityBlock(nodes[0] as never, s.project));
    const r = await installedRoot(s.dir, 'debian');
    const run = identitySh(s, `id_apply "${r}"`);
    expect(run.code, run.out).toBe(0);
    expect(await readFile(join(r, 'etc/systemd/network/10-osbake-node.network'), 'utf8')).toBe(
      [
        "# osbake: this node's network (nodes: in osbake.yaml)",
        '[Match]',
        'MACAddress=52:54:00:0b:00:01',
        '',
        '[Network]',
        'DHCP=no',
        'Address=10.0.2.21/24',
        'Address=fd00::21/64',
        'Gateway=10.0.2.2',
        'Gateway=fd00::1',
        'DNS=10.0.2.3',
        'DNS=fd00::3',
        'Domains=cluster.example',
        '',
      ].join('\n'),
    );
    const ak = join(r, 'root/.ssh/authorized_keys');
    expect(await readFile(ak, 'utf8')).toBe(`${KEY}\n`);
    expect(statSync(ak).mode & 0o777).toBe(0o600);
    const admin = join(r, 'home/admin/.ssh');
    expect(statSync(admin).uid).toBe(1000);
    expect(statSync(admin).mode & 0o777).toBe(0o700);
    expect(statSync(join(admin, 'authorized_keys')).gid).toBe(1000);
    expect(await readFile(join(r, 'etc/issue.d/osbake.issue'), 'utf8')).toBe('node01 \\4\n');
    expect(await readFile(join(r, 'etc/cluster/hosts'), 'utf8')).toContain('10.0.2.22 node02');
    expect(statSync(join(r, 'etc/cluster/hosts')).mode & 0o777).toBe(0o600);
    // resolv.conf is systemd-resolved's link: untouched.
    expect(execFileSync('readlink', [join(r, 'etc/resolv.conf')], { encoding: 'utf8' }).trim()).toContain(
      'stub-resolv.conf',
    );
    // Again (a reinstall onto the same root): the key is not added twice.
    expect(identitySh(s, `id_apply "${r}"`).code).toBe(0);
    expect(await readFile(ak, 'utf8')).toBe(`${KEY}\n`);
  });

  it('writes a Rocky node: a NetworkManager keyfile (mode 600), DHCP with extra DNS', async () => {
    const s = await scratch();
    const nodes = projectNodes(parseYamlConfig('osbake.yaml', CONFIG, ProjectConfigSchema));
    const r = await installedRoot(s.dir, 'rocky');
    await writeFile(join(s.tmp, 'identity'), await identityBlock(nodes[0] as never, s.project));
    expect(identitySh(s, `id_apply "${r}"`).code).toBe(0);
    const nm = join(r, 'etc/NetworkManager/system-connections/osbake-node.nmconnection');
    const text = await readFile(nm, 'utf8');
    expect(text).toContain('[ethernet]\nmac-address=52:54:00:0b:00:01\n');
    expect(text).toContain(
      '[ipv4]\nmethod=manual\naddress1=10.0.2.21/24\ngateway=10.0.2.2\ndns=10.0.2.3;\ndns-search=cluster.example;\n',
    );
    expect(text).toContain('[ipv6]\nmethod=manual\naddress1=fd00::21/64\ngateway=fd00::1\ndns=fd00::3;\n');
    expect(statSync(nm).mode & 0o777).toBe(0o600);
    // node02 (DHCP, no MAC): the first NIC of the machine.
    await writeFile(join(s.tmp, 'identity'), await identityBlock(nodes[1] as never, s.project));
    expect(identitySh(s, `id_apply "${r}"`).code).toBe(0);
    const dhcp = await readFile(nm, 'utf8');
    expect(dhcp).toContain('mac-address=52:54:00:99:99:99');
    expect(dhcp).toContain('[ipv4]\nmethod=auto\ndns=10.0.2.3;\n');
  });

  it('chooses the node on the stick by name, by MAC, by DMI serial, and says when none matches', async () => {
    const s = await scratch();
    const nodes = projectNodes(parseYamlConfig('osbake.yaml', CONFIG, ProjectConfigSchema));
    const conf = join(s.dir, 'nodes.conf');
    await writeFile(conf, (await identitiesText(nodes, s.project)) as string);
    let run = identitySh(s, `id_choose "${conf}" node01 && id_get target && id_get then`);
    expect(run.out).toContain('LOG node node01 (named in the settings)\n/dev/vda\nreboot\n');
    run = identitySh(s, `id_choose "${conf}" nope`);
    expect(run.code).toBe(9);
    expect(run.out).toContain('FAIL node=nope: no such node in nodes.conf (node01 node02 )');
    // By serial (this "machine" has MAC ..:99 and serial OSB-0002).
    run = identitySh(s, `id_choose "${conf}" "" && id_get node`);
    expect(run.out).toContain("LOG node node02 (by this machine's serial number OSB-0002)\nnode02\n");
    // By MAC: a NIC with node01's address.
    await writeFile(join(s.sys, 'class/net/eth0/address'), '52:54:00:0b:00:01\n');
    run = identitySh(s, `id_choose "${conf}" "" && id_get node`);
    expect(run.out).toContain('LOG node node01 (by the MAC 52:54:00:0b:00:01 of this machine)\nnode01\n');
    await writeFile(join(s.sys, 'class/net/eth0/address'), '52:54:00:77:77:77\n');
    await writeFile(join(s.sys, 'class/dmi/id/product_serial'), 'OTHER\n');
    run = identitySh(s, `id_choose "${conf}" ""; echo rc=$?`);
    expect(run.out).toContain(
      'no node of nodes.conf matches this machine (MACs 52:54:00:77:77:77 serial OTHER)',
    );
    expect(run.out).toContain('rc=1');
    expect(existsSync(join(s.tmp, 'identity'))).toBe(false);
  });

  it('refuses to write through a symlink in the image, a user that does not exist, an image without a network manager', async () => {
    const s = await scratch();
    const r = await installedRoot(s.dir, 'debian');
    const outside = join(s.dir, 'outside');
    await mkdir(outside);
    await mkdir(join(r, 'etc/issue.d'), { recursive: true });
    await symlink(outside, join(r, 'etc/cluster'));
    const block = (lines: string) => writeFile(join(s.tmp, 'identity'), `node n1\n${lines}\nend\n`);
    await block(`file 0644 /etc/cluster/hosts ${Buffer.from('x').toString('base64')}`);
    let run = identitySh(s, `id_apply "${r}"`);
    expect(run.code).toBe(9);
    expect(run.out).toContain(
      'FAIL /etc/cluster/hosts in the installed system is or lies under a symbolic link',
    );
    expect(existsSync(join(outside, 'hosts'))).toBe(false);
    await block(`key nobody ${Buffer.from(KEY).toString('base64')}`);
    run = identitySh(s, `id_apply "${r}"`);
    expect(run.out).toContain('FAIL user nobody (authorizedKeys) does not exist in the installed system');
    await rm(join(r, 'usr'), { recursive: true });
    await chmod(r, 0o755);
    await block('nic 52:54:00:00:00:01\ndhcp yes');
    run = identitySh(s, `id_apply "${r}"`);
    expect(run.out).toContain('FAIL the installed system has neither NetworkManager nor systemd-networkd');
  });
});
