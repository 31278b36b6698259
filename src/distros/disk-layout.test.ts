import { describe, expect, it } from 'vitest';
import { DEBIAN_BOOT_CHAIN } from './debian.js';
import {
  espFiles,
  espGrubConfig,
  fatVolumeId,
  fstab,
  GPT_TYPE,
  grubDefaults,
  HYBRID_LAYOUT,
  hybridSfdiskScript,
  MIB,
  rootGrubConfig,
} from './disk-layout.js';

describe('hybrid disk layout', () => {
  it('is GPT: BIOS boot, ESP, then root to the end of the disk (last, so it can grow)', () => {
    const lines = hybridSfdiskScript().split('\n');
    expect(lines[0]).toBe('label: gpt');
    expect(lines[1]).toBe(`start=2048, size=2048, type=${GPT_TYPE.biosBoot}, name="bios"`);
    expect(lines[2]).toBe(`start=4096, size=258048, type=${GPT_TYPE.esp}, name="esp"`);
    expect(lines[3]).toBe(`start=262144, type=${GPT_TYPE.rootX86_64}, name="root"`);
    // No overlap, MiB-aligned.
    const L = HYBRID_LAYOUT;
    expect(L.bios.offset + L.bios.size).toBe(L.esp.offset);
    expect(L.esp.offset + L.esp.size).toBe(L.root.offset);
    for (const o of [L.bios.offset, L.esp.offset, L.root.offset]) expect(o % MIB).toBe(0);
  });

  it('puts shim on the removable-media path and under the vendor directory, each with grub.cfg', () => {
    const files = espFiles(DEBIAN_BOOT_CHAIN, 'CFG');
    const byPath = Object.fromEntries(files.map((f) => [f.path, f.from ?? f.text]));
    expect(byPath['EFI/BOOT/BOOTX64.EFI']).toBe('usr/lib/shim/shimx64.efi.signed');
    expect(byPath['EFI/BOOT/grubx64.efi']).toBe('usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed');
    expect(byPath['EFI/BOOT/mmx64.efi']).toBe('usr/lib/shim/mmx64.efi.signed');
    expect(byPath['EFI/debian/shimx64.efi']).toBe('usr/lib/shim/shimx64.efi.signed');
    expect(byPath['EFI/BOOT/grub.cfg']).toBe('CFG');
    expect(byPath['EFI/debian/grub.cfg']).toBe('CFG');
    // No fallback loader (fbx64.efi): it would write NVRAM entries and reset.
    expect(files.some((f) => /fbx64/i.test(f.path))).toBe(false);
  });

  it('finds the root by UUID from the ESP and boots the kernel links with root=UUID', () => {
    expect(espGrubConfig('u-1')).toContain('search --no-floppy --fs-uuid --set=root u-1');
    const cfg = rootGrubConfig('u-1', 'console=ttyS0,115200n8', "Debian 'x' GNU/Linux");
    expect(cfg).toContain('linux /vmlinuz root=UUID=u-1 ro console=ttyS0,115200n8');
    expect(cfg).toContain('initrd /initrd.img');
    expect(cfg).toContain("menuentry 'Debian x GNU/Linux'");
    expect(cfg).toContain('terminal_output console serial');
  });

  it('makes update-grub write root=UUID even without /dev/disk/by-uuid', () => {
    const d = grubDefaults('u-1', 'console=ttyS0', 'Debian');
    expect(d).toContain('GRUB_DEVICE="UUID=u-1"');
    expect(d).toContain('GRUB_CMDLINE_LINUX="console=ttyS0"');
    expect(d).toContain('GRUB_TERMINAL="console serial"');
  });

  it('mounts the root and the ESP by UUID', () => {
    const t = fstab('u-1', 'ABCD-0123');
    expect(t).toContain('UUID=u-1 / ext4 errors=remount-ro 0 1');
    expect(t).toContain('UUID=ABCD-0123 /boot/efi vfat umask=0077,nofail 0 2');
    expect(fstab('u-1')).not.toContain('/boot/efi');
  });

  it('spells a FAT volume id as mkfs.vfat -i and blkid do', () => {
    expect(fatVolumeId(Uint8Array.from([0xab, 0xcd, 0x01, 0x23, 0xff]))).toEqual({
      mkfs: 'ABCD0123',
      uuid: 'ABCD-0123',
    });
  });
});

describe('seeded disk identifiers', () => {
  it('the same seed gives the same GUIDs, UUID and ESP id; another seed others; UUIDs well-formed', async () => {
    const { diskIds, seededUuid } = await import('./disk-image.js');
    const a = diskIds('debian-bookworm-56b0065d404022d8');
    expect(diskIds('debian-bookworm-56b0065d404022d8')).toEqual(a);
    expect(diskIds('debian-bookworm-0000000000000000').rootFs).not.toBe(a.rootFs);
    for (const u of [a.gpt, a.bios, a.esp, a.root, a.rootFs])
      expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set([a.gpt, a.bios, a.esp, a.root, a.rootFs]).size).toBe(5);
    expect(a.espVolumeId).toHaveLength(4);
    expect(seededUuid('s', 'x')).toBe(seededUuid('s', 'x'));
  });

  it('puts them in the sfdisk script: label-id and one uuid per partition', () => {
    const ids = { gpt: 'a-gpt', bios: 'a-bios', esp: 'a-esp', root: 'a-root' };
    const script = hybridSfdiskScript(HYBRID_LAYOUT, ids);
    expect(script).toContain('label-id: a-gpt\n');
    expect(script).toMatch(/name="bios", uuid=a-bios\n/);
    expect(script).toMatch(/name="esp", uuid=a-esp\n/);
    expect(script).toMatch(/name="root", uuid=a-root\n/);
    expect(hybridSfdiskScript(HYBRID_LAYOUT)).not.toContain('uuid=');
  });
});
