import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assessTarget,
  candidates,
  findDevice,
  flatten,
  parseForce,
  parseLsblk,
  parseMountinfo,
  parseSwaps,
  remainingRefusals,
  rootDisk,
  type SystemState,
} from './devices.js';

const testdata = join(__dirname, 'testdata');
const lsblk = (f: string) => parseLsblk(readFileSync(join(testdata, f), 'utf8'));

/** A workstation: / on LVM on the NVMe disk, a USB stick with a mounted partition, a USB SSD, a card reader. */
const workstation: SystemState = {
  tree: lsblk('lsblk-workstation-2.36.json'),
  mounts: parseMountinfo(
    [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw,errors=remount-ro',
      '23 22 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw',
      '24 22 8:17 / /media/alice/My\\040Stick rw,nosuid - vfat /dev/sdb1 rw',
    ].join('\n'),
  ),
  swaps: parseSwaps('Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1  partition\t7812496\t0\t-2\n'),
};

/** This VM: / is the whole disk /dev/vda (no partition table). */
const vm: SystemState = {
  tree: lsblk('lsblk-vm-root.json'),
  mounts: parseMountinfo('27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n'),
  swaps: [],
};

/** A loop device with two partitions, the first mounted (lsblk 2.38, booleans). */
const loop: SystemState = {
  tree: lsblk('lsblk-loop-mounted.json'),
  mounts: parseMountinfo('46 27 259:0 / /tmp/bmt/mnt rw,relatime - ext4 /dev/loop0p1 rw\n'),
  swaps: [],
};

const dev = (s: SystemState, name: string) => {
  const d = findDevice(s, name);
  if (!d) throw new Error(`no ${name}`);
  return d;
};
const checks = (s: SystemState, name: string, size = 1 << 30) =>
  assessTarget(dev(s, name), s, size).map((r) => r.check);

describe('parseLsblk', () => {
  it('reads old (strings, mountpoint) and new (booleans, mountpoints) lsblk JSON', () => {
    const w = flatten(workstation.tree);
    expect(w.find((d) => d.name === 'sdb')).toMatchObject({
      rm: true,
      hotplug: true,
      tran: 'usb',
      size: 31025463296,
    });
    expect(w.find((d) => d.name === 'sdb1')?.mountpoints).toEqual(['/media/alice/STICK']);
    const l = flatten(loop.tree);
    expect(l.find((d) => d.name === 'loop0p1')).toMatchObject({
      mountpoints: ['/tmp/bmt/mnt'],
      pkname: 'loop0',
      majMin: '259:0',
    });
    expect(l.find((d) => d.name === 'loop0')).toMatchObject({ rm: false, type: 'loop', model: '' });
  });

  it('rejects output that is not lsblk JSON', () => {
    expect(() => parseLsblk('{"blockdevices":[{"name":1}]}')).toThrow(/unexpected lsblk output/);
  });
});

describe('parseMountinfo / parseSwaps', () => {
  it('unescapes octal escapes in mount points', () => {
    expect(workstation.mounts[2]).toEqual({
      majMin: '8:17',
      mountPoint: '/media/alice/My Stick',
      source: '/dev/sdb1',
    });
  });
  it('reads swap devices', () => {
    expect(workstation.swaps).toEqual(['/dev/dm-1']);
  });
});

describe('rootDisk', () => {
  it.each<[string, SystemState, string | undefined]>([
    ['through LVM and a partition (PKNAME chain)', workstation, '/dev/nvme0n1'],
    ['a whole disk without partitions', vm, '/dev/vda'],
    ['/ not on a listed device', loop, undefined],
  ])('%s', (_n, s, want) => {
    expect(rootDisk(s)?.path).toBe(want);
  });
});

describe('assessTarget', () => {
  it.each<[string, SystemState, string, number, string[]]>([
    ['USB stick, partition mounted', workstation, '/dev/sdb', 1 << 30, ['mounted']],
    ['USB SSD (RM=0 but TRAN=usb): fine', workstation, 'sdc', 1 << 30, []],
    ['SATA disk', workstation, '/dev/sda', 1 << 30, ['removable']],
    [
      'the disk holding / (and /boot/efi, swap)',
      workstation,
      '/dev/nvme0n1',
      1 << 30,
      ['removable', 'root', 'mounted'],
    ],
    ['write-protected SD card, too small', workstation, '/dev/sdd', 4 * 2 ** 30, ['readonly', 'size']],
    ['a partition', workstation, '/dev/sdb1', 1 << 30, ['whole-disk', 'mounted']],
    ['this VM: / is the whole disk', vm, '/dev/vda', 1 << 30, ['removable', 'root', 'mounted']],
    ['loop device with a mounted partition', loop, '/dev/loop0', 1 << 20, ['removable', 'mounted']],
    ['loop device too small', loop, 'loop0', 1 << 30, ['removable', 'mounted', 'size']],
  ])('%s', (_n, s, name, size, want) => {
    expect(checks(s, name, size)).toEqual(want);
  });

  it('names the mounts and swap in the message', () => {
    const r = assessTarget(dev(workstation, '/dev/nvme0n1'), workstation, 1);
    const mounted = r.find((x) => x.check === 'mounted');
    expect(mounted?.message).toContain('/dev/nvme0n1p1 on /boot/efi');
    expect(mounted?.message).toContain('/dev/mapper/vg0-root on /');
    expect(mounted?.message).toContain('/dev/mapper/vg0-swap on [SWAP]');
  });
});

describe('system disks', () => {
  it('a disk holding /home (not /) is a system disk that no --force writes', () => {
    const s: SystemState = {
      ...workstation,
      mounts: parseMountinfo(
        [
          '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw',
          '25 22 8:0 / /home rw,relatime - ext4 /dev/sda rw',
        ].join('\n'),
      ),
    };
    const r = assessTarget(dev(s, '/dev/sda'), s, 1);
    expect(r.map((x) => x.check)).toEqual(['removable', 'system', 'mounted']);
    expect(r.find((x) => x.check === 'system')?.message).toContain('/dev/sda on /home');
    expect(remainingRefusals(r, parseForce('all')).map((x) => x.check)).toEqual(['system']);
  });
});

describe('parseForce / remainingRefusals', () => {
  it.each<[string | boolean | undefined, string[]]>([
    [undefined, []],
    [true, ['removable']],
    ['size', ['size']],
    ['removable, size', ['removable', 'size']],
    ['all', ['removable', 'mounted', 'size']],
  ])('--force %j', (v, want) => {
    expect(parseForce(v)).toEqual(want);
  });

  it('rejects unknown check names; read-only, the root disk and system disks cannot be forced', () => {
    expect(() => parseForce('bogus')).toThrow(/no such check/);
    for (const c of ['readonly', 'root', 'system', 'whole-disk']) {
      expect(() => parseForce(c)).toThrow(/this check cannot be skipped/);
    }
    const nvme = assessTarget(dev(workstation, '/dev/nvme0n1'), workstation, 1);
    expect(remainingRefusals(nvme, parseForce('all')).map((x) => x.check)).toEqual(['root']);
    const r = assessTarget(dev(workstation, '/dev/sdd'), workstation, 4 * 2 ** 30);
    expect(remainingRefusals(r, parseForce('all')).map((x) => x.check)).toEqual(['readonly']);
  });
});

describe('candidates', () => {
  it('lists whole disks with a size, with what burn would say', () => {
    expect(candidates(workstation).map((c) => [c.name, c.removable, c.refusals.join(',')])).toEqual([
      ['nvme0n1', false, 'removable,root,mounted'],
      ['sda', false, 'removable'],
      ['sdb', true, 'mounted'],
      ['sdc', true, ''],
      ['sdd', true, 'readonly'],
    ]);
  });
});
