import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  filterModulesDep,
  moduleClosure,
  normalizeModuleName,
  parseLdd,
  parseModulesBuiltin,
  parseModulesDep,
  resolveInRoot,
} from './initramfs.js';

const DEP = [
  'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio.ko:',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko',
  'kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko',
  'kernel/drivers/scsi/scsi_common.ko:',
  'kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko',
  'kernel/fs/jbd2/jbd2.ko:',
  '',
].join('\n');

describe('module closure', () => {
  const dep = parseModulesDep(DEP);
  it('normalizes dashes like modprobe', () => {
    expect(normalizeModuleName('usb-storage')).toBe('usb_storage');
    expect(dep.get('usb_storage')?.path).toBe('kernel/drivers/usb/storage/usb-storage.ko');
  });
  it('follows dependencies transitively and skips built-ins', () => {
    const c = moduleClosure(dep, parseModulesBuiltin('kernel/drivers/usb/host/xhci-pci.ko\n'), [
      'usb_storage',
      'virtio_blk',
      'xhci_pci',
    ]);
    expect(c.missing).toEqual([]);
    expect(c.paths).toEqual([
      'kernel/drivers/block/virtio_blk.ko',
      'kernel/drivers/scsi/scsi_common.ko',
      'kernel/drivers/scsi/scsi_mod.ko',
      'kernel/drivers/usb/storage/usb-storage.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
    ]);
  });
  it('reports unknown modules', () => {
    expect(moduleClosure(dep, new Set(), ['ext4', 'nosuch']).missing).toEqual(['nosuch']);
  });
  it('keeps only the chosen lines of modules.dep', () => {
    expect(filterModulesDep(DEP, new Set(['kernel/fs/ext4/ext4.ko', 'kernel/fs/jbd2/jbd2.ko']))).toBe(
      'kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\nkernel/fs/jbd2/jbd2.ko:\n',
    );
  });
});

describe('parseLdd', () => {
  it('takes resolved libraries and the loader, not the vdso', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibzstd.so.1 => /lib/x86_64-linux-gnu/libzstd.so.1 (0x00007f1)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)',
    ].join('\n');
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libzstd.so.1',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });
});

describe('resolveInRoot', () => {
  it('follows absolute and relative links inside the root, never on the host', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-root-'));
    try {
      await mkdir(join(root, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
      await writeFile(join(root, 'usr/lib/x86_64-linux-gnu/ld-2.36.so'), 'x');
      await symlink('ld-2.36.so', join(root, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'));
      await symlink('usr/lib', join(root, 'lib'));
      await mkdir(join(root, 'lib64'));
      await symlink('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(root, 'lib64/ld-linux-x86-64.so.2'));
      expect(await resolveInRoot(root, '/lib64/ld-linux-x86-64.so.2')).toBe(
        '/usr/lib/x86_64-linux-gnu/ld-2.36.so',
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
