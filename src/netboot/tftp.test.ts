import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetbootSchema } from '../config/netboot.js';
import { dnsmasqConfig } from './dnsmasq.js';
import { type NodeRecord, updateNode } from './netboot.js';
import { config, dirs, nodes, release, removeDirs } from './test-fixtures.js';
import { grubNetConfig, prepareTftpRoot, refreshGrubConfig } from './tftp.js';

afterAll(removeDirs);
const done = (mac: string): NodeRecord => ({ mac, state: 'done', release: 'r1', updated: '', events: [] });

describe('grub.cfg of the Secure Boot chain', () => {
  it('has a branch per configured node with its own kernel line, and refuses the rest', () => {
    const c = grubNetConfig({ release, config, nodes }, [], 8080);
    expect(c).toContain('if [ "$net_default_mac" = "52:54:00:aa:bb:01" ]; then\n');
    expect(c).toContain('  linux /r1/vmlinuz console=ttyS0,115200n8');
    expect(c).toContain('osbake.net=http://${net_default_server}:8080/netboot/r1 ');
    expect(c).toContain('osbake.report=http://${net_default_server}:8080/netboot/report ');
    expect(c).toContain(
      'osbake.mac=52:54:00:aa:bb:01 osbake.target=/dev/vda osbake.hostname=node01 osbake.then=reboot',
    );
    expect(c).toContain('osbake.mac=52:54:00:aa:bb:02 osbake.target=/dev/nvme0n1 osbake.then=poweroff');
    expect(c).toContain('  initrd /r1/initrd.img\n  boot\nfi\n');
    // The EFI stub's own initrd= loader is iPXE's business: GRUB hands the initrd over itself.
    expect(c).not.toContain('initrd=initrd.img');
    expect(c).toMatch(
      /is not a node of this server \(netboot.unknown: refuse in osbake.yaml\)"\nsleep 5\nexit\n$/,
    );
  });

  it('sends a node that is done to its disk (exit: the next boot entry), and gives unknown nodes the menu', () => {
    const menu = NetbootSchema.parse({ ...config, unknown: 'menu', url: 'http://10.0.0.5:8080' });
    const c = grubNetConfig({ release, config: menu, nodes }, [done('52:54:00:aa:bb:01')], 9999);
    expect(c).toMatch(
      /"52:54:00:aa:bb:01" \]; then\n {2}echo "osbake: 52:54:00:aa:bb:01 installed r1; booting from its disk[^\n]*\n {2}exit\nfi/,
    );
    expect(c).toContain('osbake.net=http://10.0.0.5:8080/netboot/r1');
    expect(c).not.toContain('9999');
    expect(c).toMatch(/\nlinux \/r1\/vmlinuz [^\n]*osbake\.mac=\$\{net_default_mac\} osbake\.then=poweroff/);
  });

  it('never writes what GRUB would read as script', () => {
    expect(() =>
      grubNetConfig({ release: { ...release, build: 'x"; reboot; "' }, config, nodes }, [], 1),
    ).toThrow(/cannot go into grub.cfg/);
    const odd = { ...done('52:54:00:aa:bb:01'), release: '$(x)' };
    expect(() => grubNetConfig({ release, config, nodes }, [odd], 1)).toThrow(/cannot go into grub.cfg/);
  });

  it('fills the TFTP root from the release files and rewrites grub.cfg when a node record changes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-tftp-'));
    dirs.push(root);
    const src = join(root, 'cache');
    await mkdir(src);
    for (const f of ['vmlinuz', 'initrd.img', 'bootx64.efi', 'grubx64.efi']) await writeFile(join(src, f), f);
    const nb = {
      release: { ...release, dir: src },
      config,
      nodes,
      root: '/nonexistent',
      nodesDir: join(root, 'nodes'),
      tftpDir: join(root, 'tftp'),
    };
    await mkdir(nb.nodesDir);
    const t = await prepareTftpRoot(nb, 8080);
    expect(t.secureBoot).toBe(true);
    expect(await readFile(join(nb.tftpDir, 'bootx64.efi'), 'utf8')).toBe('bootx64.efi');
    expect(await readFile(join(nb.tftpDir, 'r1', 'initrd.img'), 'utf8')).toBe('initrd.img');
    const cfg = join(nb.tftpDir, 'grub', 'grub.cfg');
    expect(await readFile(cfg, 'utf8')).toContain('osbake.hostname=node01');
    expect(await refreshGrubConfig(nb, 8080)).toBe(false);
    // Another stick's shim of the same size replaces the one there (a copy is newer than its source).
    await writeFile(join(src, 'bootx64.efi'), 'BOOTX64.EFI');
    await utimes(join(src, 'bootx64.efi'), new Date('2026-01-01'), new Date('2026-01-01'));
    await prepareTftpRoot(nb, 8080);
    expect(await readFile(join(nb.tftpDir, 'bootx64.efi'), 'utf8')).toBe('BOOTX64.EFI');
    // Serving another release removes what osbake placed for this one, and nothing else.
    await mkdir(join(nb.tftpDir, 'mine'));
    await writeFile(join(nb.tftpDir, 'mine', 'keep'), 'the user');
    await prepareTftpRoot({ ...nb, release: { ...nb.release, release: 'r2' } }, 8080);
    expect(existsSync(join(nb.tftpDir, 'r1'))).toBe(false);
    expect(await readFile(join(nb.tftpDir, 'r2', 'vmlinuz'), 'utf8')).toBe('vmlinuz');
    expect(existsSync(join(nb.tftpDir, 'mine', 'keep'))).toBe(true);
    await prepareTftpRoot(nb, 8080);
    expect(existsSync(join(nb.tftpDir, 'r2'))).toBe(false);
    expect(existsSync(join(nb.tftpDir, 'r1', 'initrd.img'))).toBe(true);
    // A file where the TFTP root belongs: a clear error, nothing written elsewhere.
    const other = { ...nb, tftpDir: join(root, 'not-a-dir') };
    await writeFile(other.tftpDir, 'x');
    await expect(prepareTftpRoot(other, 8080)).rejects.toMatchObject({ code: 'E_INPUT' });
    await updateNode(nb.nodesDir, '52:54:00:aa:bb:01', { state: 'done', release: 'r1' });
    expect(await refreshGrubConfig(nb, 8080)).toBe(true);
    expect(await readFile(cfg, 'utf8')).toContain('booting from its disk');
  });
});

describe('dnsmasq-config', () => {
  const o = {
    server: 'http://10.0.0.5:8080',
    subnet: '10.0.0.0/24',
    tftpRoot: '/srv/osbake/.osbake/netboot/tftp',
  };
  it('gives UEFI the signed chain by default, iPXE when asked, BIOS iPXE always', () => {
    const c = dnsmasqConfig(o);
    expect(c).toContain('tftp-root=/srv/osbake/.osbake/netboot/tftp\n');
    expect(c).toContain('pxe-service=tag:!ipxe,X86-64_EFI,"osbake: Secure Boot chain (UEFI)",bootx64.efi\n');
    expect(c).toContain('pxe-service=tag:!ipxe,x86PC,"osbake: iPXE (BIOS)",undionly.kpxe\n');
    expect(c).not.toContain('snponly.efi');
    const i = dnsmasqConfig({ ...o, uefi: 'ipxe' });
    expect(i).toContain('pxe-service=tag:!ipxe,X86-64_EFI,"osbake: iPXE (UEFI)",snponly.efi\n');
    expect(i).not.toContain('bootx64.efi');
  });

  it('is the DHCP server of a provisioning network with --dhcp-range (GRUB ignores proxy answers)', () => {
    const c = dnsmasqConfig({ ...o, subnet: '10.0.0.0/24', dhcpRange: '10.0.0.100,10.0.0.199' });
    expect(c).toContain('dhcp-range=10.0.0.100,10.0.0.199,255.255.255.0,12h\n');
    expect(c).not.toContain(',proxy');
    expect(c).toContain('dhcp-match=set:efi64,option:client-arch,7\n');
    expect(c).toContain('dhcp-boot=tag:!ipxe,tag:efi64,bootx64.efi,,10.0.0.5\n');
    expect(c).toContain('dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,10.0.0.5\n');
    expect(c).toContain('dhcp-boot=tag:ipxe,http://10.0.0.5:8080/netboot/boot.ipxe,,10.0.0.5\n');
    expect(dnsmasqConfig({ ...o, subnet: '10.1.0.0/16', dhcpRange: '10.1.2.3,10.1.9.9' })).toContain(
      'dhcp-range=10.1.2.3,10.1.9.9,255.255.0.0,12h',
    );
    expect(dnsmasqConfig(o)).toContain('GRUB (the Secure Boot chain');
    for (const r of [
      '10.0.1.5,10.0.1.9',
      '10.0.0.9,10.0.0.5',
      '10.0.0.5',
      '10.0.0.5,10.0.0.9,x',
      '10.0.0.5,10.0.0.9\nport=53',
      '10.0.0.0,10.0.0.9',
      '10.0.0.5,10.0.0.255',
    ]) {
      expect(() => dnsmasqConfig({ ...o, subnet: '10.0.0.0/24', dhcpRange: r }), r).toThrow(/--dhcp-range/);
    }
    expect(() => dnsmasqConfig({ ...o, subnet: '10.0.0.0', dhcpRange: '10.0.0.5,10.0.0.9' })).toThrow(
      /--dhcp-range/,
    );
  });
});
