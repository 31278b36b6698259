import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetbootSchema, normalizeMac } from '../config/netboot.js';
import { parsePayloadRanges } from '../installer/payload.js';
import { nginxConfig } from '../serve/nginx.js';
import { dnsmasqConfig } from './dnsmasq.js';
import { newestInstallerRelease, parseSha256Sums } from './files.js';
import {
  baseUrl,
  chainScript,
  installSeconds,
  MAX_UNKNOWN_RECORDS,
  mayRecord,
  nodeScript,
  nodesView,
  parseReport,
  readNode,
  readNodes,
  updateNode,
} from './netboot.js';
import { config, dirs, nodes, release, removeDirs } from './test-fixtures.js';

afterAll(removeDirs);

describe('netboot config', () => {
  it('normalizes MAC addresses in any spelling and refuses what is not one', () => {
    for (const m of ['52:54:00:AA:BB:01', '52-54-00-aa-bb-01', '525400aabb01', '5254.00aa.bb01'])
      expect(normalizeMac(m), m).toBe('52:54:00:aa:bb:01');
    for (const m of [
      '52:54:00:aa:bb',
      '52:54:00:aa:bb:01:02',
      'zz:54:00:aa:bb:01',
      '52:54-00:aa:bb:01x',
      '',
      '${net0/mac}',
    ])
      expect(normalizeMac(m), m).toBeUndefined();
  });

  it('refuses duplicate MACs, duplicate hostnames, disk names the installer cannot have and values that would break a script', () => {
    const issues = (v: unknown) => {
      const r = NetbootSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ nodes: { '52:54:00:aa:bb:01': {}, '52-54-00-AA-BB-01': {} } }).join()).toMatch(
      /the same MAC/,
    );
    expect(issues({ nodes: { 'not-a-mac': {} } }).join()).toMatch(/is not a node's MAC address/);
    expect(issues({ nodes: { 'ff:ff:ff:ff:ff:ff': {} } }).join()).toMatch(/broadcast/);
    expect(issues({ nodes: { '01:00:5e:00:00:01': {} } }).join()).toMatch(/is not a node's MAC/);
    expect(issues({ url: 'http://h:99999' }).join()).toMatch(/port must be 1-65535/);
    expect(
      issues({
        nodes: { '52:54:00:aa:bb:01': { hostname: 'a' }, '52:54:00:aa:bb:02': { hostname: 'A' } },
      }).join(),
    ).toMatch(/already that of/);
    expect(issues({ nodes: { '52:54:00:aa:bb:01': { target: '/dev/disk/by-id/x' } } }).join()).toMatch(
      /whole disk/,
    );
    expect(issues({ nodes: { '52:54:00:aa:bb:01': { hostname: 'a b' } } }).join()).toMatch(/host name/);
    expect(issues({ nodes: { '52:54:00:aa:bb:01': { then: 'explode' } } }).length).toBe(1);
    expect(issues({ kernelArgs: 'quiet"; boot' }).join()).toMatch(/kernel arguments/);
    expect(issues({ url: 'http://h:1/x' }).join()).toMatch(/no path/);
    expect(issues({ unknown: 'menu', kernelArgs: 'quiet nomodeset', url: 'http://10.0.0.5:8080' })).toEqual(
      [],
    );
  });
});

describe('netboot scripts', () => {
  it('chains every node to its own script by MAC', () => {
    const s = chainScript('http://10.0.0.5:8080');
    expect(s.startsWith('#!ipxe\n')).toBe(true);
    expect(s).toContain('chain http://10.0.0.5:8080/netboot/boot.ipxe?mac=${netX/mac}');
  });

  it('takes the base URL from netboot.url, else a well-formed Host header only', () => {
    expect(baseUrl(config, '10.0.2.2:8080')).toBe('http://10.0.2.2:8080');
    expect(baseUrl(config, '[fd00::1]:80')).toBe('http://[fd00::1]:80');
    for (const h of ['a b', 'x\nkernel evil', 'h/../x', '', undefined, 'h:1:2"'])
      expect(baseUrl(config, h), String(h)).toBeUndefined();
    expect(baseUrl({ ...config, url: 'http://boot.example' }, 'evil')).toBe('http://boot.example');
  });

  it('boots a known node with its settings on the kernel command line', () => {
    const s = nodeScript('http://10.0.2.2:8080', { release, config, nodes }, '52:54:00:aa:bb:01', undefined);
    expect(s.kind).toBe('install');
    expect(s.script).toContain('kernel http://10.0.2.2:8080/netboot/r1/vmlinuz initrd=initrd.img ');
    expect(s.script).toContain('osbake.net=http://10.0.2.2:8080/netboot/r1 ');
    expect(s.script).toContain('osbake.report=http://10.0.2.2:8080/netboot/report ');
    expect(s.script).toContain(
      'osbake.mac=52:54:00:aa:bb:01 osbake.target=/dev/vda osbake.hostname=node01 osbake.then=reboot',
    );
    expect(s.script).toContain('initrd http://10.0.2.2:8080/netboot/r1/initrd.img\nboot\n');
    const other = nodeScript('http://h', { release, config, nodes }, '52:54:00:aa:bb:02', undefined);
    expect(other.script).toContain('osbake.target=/dev/nvme0n1');
    expect(other.script).not.toContain('osbake.hostname=');
  });

  it('refuses unknown nodes under unknown: refuse and gives them the menu otherwise', () => {
    expect(nodeScript('http://h', { release, config, nodes }, '52:54:00:00:00:09', undefined)).toMatchObject({
      kind: 'refuse',
    });
    const menu = nodeScript(
      'http://h',
      { release, config: { ...config, unknown: 'menu' }, nodes },
      '52:54:00:00:00:09',
      undefined,
    );
    expect(menu.kind).toBe('install');
    expect(menu.script).not.toContain('osbake.target=');
  });

  it('sends a node that reported done to its disk, and installs it again after reinstall', () => {
    const done = {
      mac: '52:54:00:aa:bb:01',
      state: 'done' as const,
      updated: '2026-11-30T10:00:00Z',
      events: [],
    };
    const s = nodeScript('http://h', { release, config, nodes }, done.mac, done);
    expect(s.kind).toBe('disk');
    expect(s.script).toContain('exit 0');
    expect(
      nodeScript('http://h', { release, config, nodes }, done.mac, { ...done, state: 'reinstall' }).kind,
    ).toBe('install');
  });
});

describe('netboot reports and node records', () => {
  it('parses a report and refuses a bad one', () => {
    expect(parseReport('mac=52-54-00-AA-BB-01&state=writing&percent=35')).toEqual({
      mac: '52:54:00:aa:bb:01',
      state: 'writing',
      percent: 35,
    });
    expect(parseReport('mac=x&state=done')).toMatch(/mac/);
    expect(parseReport('mac=525400aabb01&state=hacked')).toMatch(/state/);
    expect(parseReport('mac=525400aabb01&state=writing&percent=101')).toMatch(/percent/);
    expect(parseReport('mac=525400aabb01&state=writing&bytes=123456')).toMatchObject({ bytes: 123456 });
    for (const b of ['-1', '1.5', '0x10', '1e9', '9999999999999999'])
      expect(parseReport(`mac=525400aabb01&state=writing&bytes=${b}`), b).toMatch(/bytes/);
    const r = parseReport(`mac=525400aabb01&state=failed&message=x&log=${'a'.repeat(20_000)}`);
    expect(typeof r === 'object' && r.log?.length).toBe(16_000);
  });

  it('keeps one JSON record per node, each state once with its first time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nb-'));
    dirs.push(dir);
    const mac = '52:54:00:aa:bb:01';
    await updateNode(dir, mac, { state: 'booted', address: '10.0.2.15' }, new Date('2026-11-30T10:00:00Z'));
    await updateNode(dir, mac, { state: 'writing', percent: 5 }, new Date('2026-11-30T10:00:10Z'));
    await updateNode(
      dir,
      mac,
      { state: 'writing', percent: 10, bytes: 5000 },
      new Date('2026-11-30T10:00:20Z'),
    );
    const r = await updateNode(
      dir,
      mac,
      { state: 'done', message: 'ok', log: 'l' },
      new Date('2026-11-30T10:01:00Z'),
    );
    // The installer's byte count stays with the install; the time runs from booted to done.
    expect(r.bytes).toBe(5000);
    expect(installSeconds(r)).toBe(60);
    expect(installSeconds({ ...r, state: 'writing' }, Date.parse('2026-11-30T10:00:30Z'))).toBe(30);
    expect(r.events.map((e) => e.state)).toEqual(['booted', 'writing', 'done']);
    expect(r.events[1]).toEqual({ state: 'writing', at: '2026-11-30T10:00:10.000Z', percent: 10 });
    expect(r.address).toBe('10.0.2.15');
    expect(JSON.parse(await readFile(join(dir, '52-54-00-aa-bb-01.json'), 'utf8')).state).toBe('done');
    const view = nodesView(nodes, await readNodes(dir));
    expect(view.map((n) => [n.mac, n.state, n.configured, n.bytes, n.seconds])).toEqual([
      ['52:54:00:aa:bb:01', 'done', true, 5000, 60],
      ['52:54:00:aa:bb:02', 'waiting', true, undefined, undefined],
    ]);
    // A new boot starts a new install: no bytes carried over.
    const again = await updateNode(dir, mac, { state: 'booted' }, new Date('2026-11-30T11:00:00Z'));
    expect(again.bytes).toBeUndefined();
  });
});

describe('netboot files', () => {
  it('picks the newest release that records an installer', () => {
    const a = (kind: 'image' | 'installer') => [
      { name: 'x', kind, path: 'builds/x', sha256: 'a'.repeat(64), size: 1 },
    ];
    const r = (date: string, kind: 'image' | 'installer') => ({
      date,
      git_commit: '0'.repeat(40),
      artifacts: a(kind),
    });
    expect(
      newestInstallerRelease({ old: r('2026-10-01', 'installer'), newer: r('2026-11-01', 'image') }),
    ).toBe('old');
    expect(
      newestInstallerRelease({
        '2026.9': r('2026-11-01', 'installer'),
        '2026.10': r('2026-11-01', 'installer'),
      }),
    ).toBe('2026.10');
    expect(newestInstallerRelease({ x: r('2026-11-01', 'image') })).toBeUndefined();
  });

  it('reads payload.ranges and SHA256SUMS', () => {
    const sum = 'b'.repeat(64);
    expect(parsePayloadRanges(`# offset length sha256\n0 4096 ${sum}\n1048576 8192 ${sum}\n`)).toEqual([
      { offset: 0, length: 4096, sha256: sum },
      { offset: 1048576, length: 8192, sha256: sum },
    ]);
    expect(() => parsePayloadRanges('0 x y\n')).toThrow(/bad line/);
    expect(parseSha256Sums(`${sum}  payload.zst\n${sum} *payload.ranges\n`).get('payload.ranges')).toBe(sum);
  });

  it('lets nginx send the netboot files by a named capture, nothing else under the release', () => {
    const c = nginxConfig({
      root: '/srv/store',
      host: '0.0.0.0',
      port: 8080,
      backendPort: 40000,
      workers: 2,
      dir: '/tmp/x',
      netboot: { release: '2026.11', dir: '/cache/nb/abc', files: ['vmlinuz', 'initrd.img'] },
    });
    expect(c).toContain('location ~ ^/netboot/2026[.]11/(?<osbake_nbfile>vmlinuz|initrd[.]img)$ {');
    expect(c).toContain('alias "/cache/nb/abc/$osbake_nbfile";');
    expect(c).toContain('proxy_set_header X-Forwarded-Host $http_host;');
  });
});

describe('dnsmasq-config', () => {
  it('writes proxy DHCP + TFTP: iPXE for PXE ROMs, the boot script for iPXE', () => {
    const c = dnsmasqConfig({
      server: 'http://10.0.0.5:8080/',
      subnet: '10.0.0.0/24',
      iface: 'eth1',
      tftpRoot: '/usr/lib/ipxe',
    });
    expect(c).toContain('dhcp-range=10.0.0.0,proxy\n');
    expect(c).toContain('interface=eth1\nbind-interfaces\n');
    expect(c).toContain('pxe-service=tag:!ipxe,x86PC,"osbake: iPXE (BIOS)",undionly.kpxe\n');
    expect(c).toContain('pxe-service=tag:!ipxe,X86-64_EFI,"osbake: Secure Boot chain (UEFI)",bootx64.efi\n');
    expect(c).toContain('dhcp-boot=tag:ipxe,http://10.0.0.5:8080/netboot/boot.ipxe,,10.0.0.5\n');
  });

  it('refuses values that would add lines or are not addresses', () => {
    const o = { server: 'http://10.0.0.5:8080', subnet: '10.0.0.0/24', tftpRoot: '/usr/lib/ipxe' };
    expect(() => dnsmasqConfig({ ...o, server: 'http://boot.example:8080' })).toThrow(/--server/);
    expect(() => dnsmasqConfig({ ...o, server: 'http://10.0.0.5\nenable-tftp' })).toThrow(/--server/);
    expect(() => dnsmasqConfig({ ...o, subnet: '10.0.0.0/24\ndhcp-script=/x' })).toThrow(/--subnet/);
    expect(() => dnsmasqConfig({ ...o, subnet: '300.0.0.0' })).toThrow(/--subnet/);
    expect(() => dnsmasqConfig({ ...o, iface: 'eth0 x' })).toThrow(/--interface/);
    expect(() => dnsmasqConfig({ ...o, tftpRoot: 'relative' })).toThrow(/--tftp-root/);
    for (const server of [
      'http://10.0.0.5:99999',
      'http://10.0.0.5:0',
      'http://0.0.0.0:8080',
      'http://255.255.255.255',
      'http://127.0.0.1:80',
      'http://224.0.0.1',
    ])
      expect(() => dnsmasqConfig({ ...o, server }), server).toThrow(/--server/);
  });
});

describe('netboot record limit', () => {
  it('records configured nodes always, strangers only while there are few records', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nb-'));
    dirs.push(dir);
    const { writeFile } = await import('node:fs/promises');
    for (let i = 0; i < MAX_UNKNOWN_RECORDS + 2; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const rec = { mac, state: 'booted', updated: '2026-12-06T00:00:00Z', events: [] };
      await writeFile(join(dir, `${mac.replaceAll(':', '-')}.json`), JSON.stringify(rec));
    }
    expect(await mayRecord(dir, nodes, '52:54:00:aa:bb:01')).toBe(true);
    expect(await mayRecord(dir, nodes, '52:54:00:00:00:09')).toBe(false);
    expect(await mayRecord(dir, nodes, '02:00:00:00:00:01')).toBe(true); // its record may change
  });
  it('a damaged record, a FIFO or a symlink as a record is an error naming it, not silently dropped', async () => {
    const { writeFile, symlink } = await import('node:fs/promises');
    const { execFileSync } = await import('node:child_process');
    const dir = await mkdtemp(join(tmpdir(), 'nb-'));
    dirs.push(dir);
    await writeFile(join(dir, '02-00-00-00-00-01.json'), 'root:*:19000:0:99999:7:::');
    await expect(readNode(dir, '02:00:00:00:00:01')).rejects.toThrow(
      /02-00-00-00-00-01\.json: is not valid JSON \(not JSON\)$/,
    );
    execFileSync('mkfifo', [join(dir, '02-00-00-00-00-02.json')]);
    await expect(readNode(dir, '02:00:00:00:00:02')).rejects.toThrow(/is a FIFO, not a regular file/);
    await symlink('/etc/passwd', join(dir, '02-00-00-00-00-03.json'));
    await expect(readNode(dir, '02:00:00:00:00:03')).rejects.toThrow(/is a symlink/);
    expect(await readNode(dir, '02:00:00:00:00:04')).toBeUndefined();
  });
});
