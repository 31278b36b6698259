/**
 * The keyfile identity.sh writes for an image with NetworkManager (the Rocky image) read by a real
 * NetworkManager: a Debian 12 root with network-manager (1.42, mmdebstrap, cached in the shared
 * work dir) is the installed root; identity.sh (busybox sh, as /init runs it) writes the node's
 * keyfile into it; `nmcli --offline connection modify` parses it with NetworkManager's own keyfile
 * reader, verifies the connection (nm_connection_verify) and writes it back normalised — so a
 * property NetworkManager would reject at boot fails here. No Rocky content is reachable from this
 * machine (FACTS); the keyfile format is the same for NetworkManager 1.40 (Rocky 8) and 1.46 (9).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseYamlConfig } from '../../src/config/load.js';
import { projectNodes } from '../../src/config/nodes.js';
import { ProjectConfigSchema } from '../../src/config/project.js';
import { identityBlock } from '../../src/installer/node-identity.js';
import { canRunIdentitySh, identitySh } from '../identity-sh.js';
import { SHARED_WORK_DIR } from './helpers.js';

const ROOT = join(SHARED_WORK_DIR, 'cache', 'test-nm-root');
const KEYFILE = 'etc/NetworkManager/system-connections/osbake-node.nmconnection';

const CONFIG = `
nodes:
  static:
    mac: 52:54:00:0b:00:01
    network:
      addresses: [10.0.2.21/24, "fd00::21/64"]
      gateway: 10.0.2.2
      gateway6: fd00::1
      dns: [10.0.2.3, "fd00::3"]
      search: [cluster.example, site.example]
  dhcp:
    serial: OSB-0002
    network: { dhcp: true, dns: [10.0.2.3] }
  v6only:
    mac: 52:54:00:0b:00:03
    network:
      dhcp: false
      addresses: ["2001:db8::3/64"]
      gateway6: fe80::1
`;

let work: string;

/** A Debian 12 root with NetworkManager, made once per shared work dir (complete, or not there). */
async function nmRoot(): Promise<string> {
  if (existsSync(join(ROOT, 'usr/bin/nmcli'))) return ROOT;
  const tmp = `${ROOT}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(SHARED_WORK_DIR, 'cache'), { recursive: true });
  execFileSync(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=apt',
      '--include=network-manager',
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      'bookworm',
      tmp,
      'http://deb.debian.org/debian',
    ],
    { stdio: 'inherit', timeout: 10 * 60_000 },
  );
  await rm(ROOT, { recursive: true, force: true });
  await rename(tmp, ROOT);
  return ROOT;
}

/** NetworkManager's reading of a keyfile: its normalised keyfile, or its error. */
function nmRead(root: string, keyfile: string): { code: number | null; out: string } {
  const r = spawnSync(
    'chroot',
    [root, 'nmcli', '--offline', 'connection', 'modify', 'connection.id', 'osbake-node'],
    {
      input: keyfile,
      encoding: 'utf8',
    },
  );
  return { code: r.status, out: r.stdout + r.stderr };
}

/** identity.sh writes node `name`'s identity into `root`; returns the keyfile it wrote. */
async function writtenKeyfile(root: string, name: string): Promise<string> {
  const nodes = projectNodes(parseYamlConfig('osbake.yaml', CONFIG, ProjectConfigSchema));
  const node = nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name}`);
  const s = { sys: join(work, 'sys'), tmp: join(work, 'tmp') };
  await writeFile(join(s.tmp, 'identity'), await identityBlock(node, work));
  await rm(join(root, KEYFILE), { force: true });
  const run = identitySh(s, `id_apply "${root}"`);
  expect(run.code, run.out).toBe(0);
  return readFile(join(root, KEYFILE), 'utf8');
}

describe.skipIf(!canRunIdentitySh)(
  'the NetworkManager keyfile of a node, read by NetworkManager (nmcli --offline)',
  () => {
    let root: string;
    beforeAll(async () => {
      root = await nmRoot();
      work = await mkdtemp(join(tmpdir(), 'osbake-nm-'));
      await mkdir(join(work, 'sys/class/net/eth0/device'), { recursive: true });
      await writeFile(join(work, 'sys/class/net/eth0/address'), '52:54:00:99:99:99\n');
      await mkdir(join(work, 'sys/class/dmi/id'), { recursive: true });
      await writeFile(join(work, 'sys/class/dmi/id/product_serial'), 'OSB-0002\n');
      await mkdir(join(work, 'tmp'));
      expect(execFileSync('chroot', [root, 'nmcli', '--version'], { encoding: 'utf8' })).toMatch(
        /version 1\.\d+/,
      );
    }, 15 * 60_000);
    afterAll(async () => {
      if (root) await rm(join(root, KEYFILE), { force: true });
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('static IPv4 + IPv6, gateways, DNS and search domains: accepted, every value as written', async () => {
      const nm = nmRead(root, await writtenKeyfile(root, 'static'));
      expect(nm.code, nm.out).toBe(0);
      expect(nm.out).toContain('mac-address=52:54:00:0B:00:01');
      expect(nm.out).toMatch(/\[ipv4\][^[]*address1=10\.0\.2\.21\/24,10\.0\.2\.2\n/);
      expect(nm.out).toMatch(/\[ipv4\][^[]*dns=10\.0\.2\.3;\n/);
      expect(nm.out).toMatch(/\[ipv4\][^[]*dns-search=cluster\.example;site\.example;\n/);
      expect(nm.out).toMatch(/\[ipv4\][^[]*method=manual\n/);
      expect(nm.out).toMatch(/\[ipv6\][^[]*address1=fd00::21\/64,fd00::1\n/);
      expect(nm.out).toMatch(/\[ipv6\][^[]*dns=fd00::3;\n/);
      expect(nm.out).toMatch(/\[ipv6\][^[]*method=manual\n/);
    });

    it('DHCP with extra DNS, bound to the first NIC found: accepted as method=auto', async () => {
      const nm = nmRead(root, await writtenKeyfile(root, 'dhcp'));
      expect(nm.code, nm.out).toBe(0);
      expect(nm.out).toContain('mac-address=52:54:00:99:99:99');
      expect(nm.out).toMatch(/\[ipv4\][^[]*dns=10\.0\.2\.3;\n/);
      expect(nm.out).toMatch(/\[ipv4\][^[]*method=auto\n/);
    });

    it('IPv6 only (dhcp: false) with a link-local gateway: accepted, IPv4 disabled', async () => {
      const written = await writtenKeyfile(root, 'v6only');
      const nm = nmRead(root, written);
      expect(nm.code, nm.out).toBe(0);
      expect(nm.out).toMatch(/\[ipv6\][^[]*address1=2001:db8::3\/64,fe80::1\n/);
      expect(nm.out).toMatch(/\[ipv6\][^[]*method=manual\n/);
      expect(nm.out).toMatch(/\[ipv4\][^[]*method=disabled\n/);
    });

    it('NetworkManager does refuse a keyfile it could not use (the check has teeth)', async () => {
      const written = await writtenKeyfile(root, 'static');
      const broken = written.replace(/address1=10\.0\.2\.21\/24/, 'address1=10.0.2.300/24');
      expect(broken).not.toBe(written);
      const nm = nmRead(root, broken);
      expect(nm.code).not.toBe(0);
      expect(nm.out).toMatch(/Error/);
    });
  },
);
