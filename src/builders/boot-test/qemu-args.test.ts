import { describe, expect, it } from 'vitest';
import {
  buildQemuArgs,
  parseBootMode,
  parseFirmware,
  parseReleaseFile,
  releaseMismatches,
} from './qemu-args.js';

const base = {
  disk: '/w/overlay.qcow2',
  accelerator: 'tcg' as const,
  sshPort: 2222,
  publicKeyFile: '/w/k.pub',
  serialLog: '/w/serial.log',
  memoryMiB: 1024,
  cpus: 2,
};

describe('boot test QEMU argv', () => {
  it('bios: SeaBIOS, no pflash', () => {
    const a = buildQemuArgs({ ...base, firmware: 'bios' });
    expect(a.join(' ')).toBe(
      'qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -cpu max -display none -nodefaults -no-user-config ' +
        '-drive file=/w/overlay.qcow2,format=qcow2,if=virtio -netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22 ' +
        '-device virtio-net-pci,netdev=n0 -fw_cfg name=opt/osbake/authorized_keys,file=/w/k.pub -serial file:/w/serial.log',
    );
  });

  it('uefi: q35, read-only OVMF code, the per-boot variable store', () => {
    const a = buildQemuArgs({ ...base, firmware: 'uefi', varsFile: '/w/VARS.fd' }).join(' ');
    expect(a).toContain(
      '-machine q35 -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    );
    expect(a).toContain('-drive if=pflash,format=raw,unit=1,file=/w/VARS.fd');
    expect(a).not.toContain('smm');
  });

  it('secureboot: SMM, secure pflash, the Microsoft-keys firmware', () => {
    const a = buildQemuArgs({ ...base, firmware: 'secureboot', varsFile: '/w/VARS.fd' }).join(' ');
    expect(a).toContain('-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on');
    expect(a).toContain('file=/usr/share/OVMF/OVMF_CODE_4M.ms.fd');
  });

  it('parses --firmware', () => {
    expect(parseFirmware(undefined)).toBe('bios');
    expect(parseFirmware('secureboot')).toBe('secureboot');
    expect(() => parseFirmware('coreboot')).toThrow(
      /--firmware coreboot is not one of bios, uefi, secureboot/,
    );
  });
});

describe('/etc/osbake-release', () => {
  it('reads KEY=VALUE lines and names every mismatch', () => {
    const r = parseReleaseFile('OSBAKE_IMAGE=debian12-base\nOSBAKE_RELEASE="r1"\n# comment\nnot a line\n');
    expect(r).toEqual({ OSBAKE_IMAGE: 'debian12-base', OSBAKE_RELEASE: 'r1' });
    expect(
      releaseMismatches(r, { OSBAKE_IMAGE: 'debian12-base', OSBAKE_RELEASE: 'r2', OSBAKE_BUILD: 'x' }),
    ).toEqual(['OSBAKE_RELEASE=r1 (expected r2)', 'OSBAKE_BUILD=(missing) (expected x)']);
  });
});

describe('parseBootMode (what the guest says about its firmware)', () => {
  it.each([
    ['bios\n', 'bios'],
    ['efi\nSecureBoot enabled\n', 'secureboot'],
    ['efi\nSecureBoot disabled\n', 'uefi'],
    ['efi\nsh: 1: mokutil: not found\n', 'uefi'],
    ['efi\nSecureBoot disabled\nPlatform is in Setup Mode\n', 'uefi'],
    ['', 'unknown'],
    ['Connection closed\n', 'unknown'],
  ])('%j → %s', (text, mode) => {
    expect(parseBootMode(text)).toBe(mode);
  });
});
