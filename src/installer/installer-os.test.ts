import { describe, expect, it } from 'vitest';
import { hashInputs } from '../artifacts/checksum.js';
import { ImageConfigSchema, type ImageDefinition } from '../config/image.js';
import { type Project, ProjectConfigSchema } from '../config/project.js';
import {
  buildInstallerRootArgs,
  installerModules,
  installerOsInputs,
  kernelVersionFrom,
} from './installer-os.js';

function fixture(installer: object = {}) {
  const project: Project = {
    root: '/p',
    file: '/p/osbake.yaml',
    config: ProjectConfigSchema.parse({ mirrors: { debian: { main: 'http://m/debian' } } }),
    storeDir: '/p/store',
    workDir: '/p/.osbake',
    outDir: '/p/out',
  };
  const config = ImageConfigSchema.parse({ name: 'usb', distro: 'debian', kind: 'installer', installer });
  const image: ImageDefinition = {
    name: 'usb',
    dir: '/p/images/usb',
    file: '/p/images/usb/image.yaml',
    config,
    templateDir: '/p/images/usb',
    manifestFile: '/p/images/usb/manifest.json',
  };
  return { project, image };
}

describe('installer OS', () => {
  it('bootstraps a small root with the kernel and tools, update-initramfs diverted, all three suites', () => {
    const { project, image } = fixture();
    const argv = buildInstallerRootArgs(project, image, '/w/root');
    expect(argv.slice(0, 4)).toEqual([
      'mmdebstrap',
      '--variant=essential',
      '--mode=root',
      '--format=directory',
    ]);
    expect(argv).toContain(
      '--include=linux-image-amd64,busybox-static,zstd,fdisk,e2fsprogs,util-linux,kmod,shim-signed,grub-efi-amd64-signed,gpgv,curl',
    );
    expect(argv.filter((a) => a.startsWith('--essential-hook='))).toHaveLength(2);
    expect(argv.slice(-5)).toEqual([
      'bookworm',
      '/w/root',
      'deb http://m/debian bookworm main',
      'deb http://m/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
  });
  it('adds configured modules to the base set and changes the cache key with them', () => {
    const a = fixture();
    const b = fixture({ modules: ['mpt3sas', 'ext4'] });
    expect(installerModules(b.image)).toContain('mpt3sas');
    expect(installerModules(b.image).filter((m) => m === 'ext4')).toHaveLength(1);
    // The network install's NIC drivers are in every installer.
    for (const nic of ['virtio_net', 'e1000e', 'igb', 'ixgbe', 'mlx5_core'])
      expect(installerModules(a.image)).toContain(nic);
    expect(hashInputs(installerOsInputs(a.project, a.image))).not.toBe(
      hashInputs(installerOsInputs(b.project, b.image)),
    );
  });
  it('finds the kernel version in /boot', () => {
    expect(
      kernelVersionFrom(['System.map-6.1.0-56-amd64', 'config-6.1.0-56-amd64', 'vmlinuz-6.1.0-56-amd64']),
    ).toBe('6.1.0-56-amd64');
    expect(() => kernelVersionFrom(['config-6.1.0-56-amd64'])).toThrow(/no \/boot\/vmlinuz/);
  });
});
