import { describe, expect, it } from 'vitest';
import {
  dataPartitionBytes,
  extlinuxInstallerConfig,
  grubInstallerConfig,
  installerKernelArgs,
  MIB,
  planStickLayout,
  sfdiskScript,
} from './stick-layout.js';

describe('stick layout', () => {
  it('puts a 16 MiB ESP at 1 MiB and the data partition after it, in whole MiB', () => {
    const l = planStickLayout(200 * MIB + 123);
    expect(l.esp).toEqual({ offset: MIB, size: 16 * MIB });
    expect(l.data.offset).toBe(17 * MIB);
    expect(l.data.size % MIB).toBe(0);
    expect(l.data.size).toBeGreaterThanOrEqual(200 * MIB * 1.01 + 12 * MIB);
    expect(l.totalBytes).toBe(l.data.offset + l.data.size);
  });
  it('writes an MBR with the ESP (ef) and an active Linux data partition', () => {
    const l = planStickLayout(0);
    expect(dataPartitionBytes(0)).toBe(12 * MIB);
    expect(sfdiskScript(l)).toBe(
      'label: dos\nstart=2048, size=32768, type=ef\nstart=34816, size=24576, type=83, bootable\n',
    );
  });
  it('boots the same kernel from both loaders, console on the screen, mirrored on serial', () => {
    const args = installerKernelArgs('OSBAKE-USB', 'osbake.then=reboot');
    expect(args).toBe(
      'console=ttyS0,115200n8 console=tty0 osbake.label=OSBAKE-USB panic=30 osbake.then=reboot',
    );
    expect(extlinuxInstallerConfig(args)).toContain(`  APPEND ${args}\n`);
    const grub = grubInstallerConfig('OSBAKE-USB', args);
    expect(grub).toContain('search --no-floppy --label OSBAKE-USB --set=root');
    expect(grub).toContain(`linux /boot/vmlinuz ${args}`);
    expect(grub).toContain('initrd /boot/initrd.img');
  });
});
