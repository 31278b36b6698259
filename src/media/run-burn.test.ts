import { describe, expect, it } from 'vitest';
import { refusalError } from './burn-common.js';
import { formatCandidates } from './run-burn.js';

describe('formatCandidates', () => {
  it('shows each disk with what burn would say', () => {
    const text = formatCandidates([
      {
        path: '/dev/sdb',
        name: 'sdb',
        size: 31025463296,
        model: 'Ultra Fit',
        serial: '4C53',
        tran: 'usb',
        removable: true,
        refusals: [],
      },
      {
        path: '/dev/nvme0n1',
        name: 'nvme0n1',
        size: 512110190592,
        model: 'Samsung SSD',
        serial: '',
        tran: 'nvme',
        removable: false,
        refusals: ['removable', 'root', 'mounted'],
      },
    ]);
    expect(text).toBe(
      [
        'DEVICE        SIZE       MODEL        SERIAL  TRAN  BURN',
        '/dev/sdb      28.9 GiB   Ultra Fit    4C53    usb   ok',
        '/dev/nvme0n1  476.9 GiB  Samsung SSD  -       nvme  refused: not removable, holds /, in use',
        '',
      ].join('\n'),
    );
  });

  it('says so when there is no disk', () => {
    expect(formatCandidates([])).toMatch(/no disks found/);
  });
});

describe('refusalError', () => {
  it('one refusal: its code, message and hint', () => {
    const e = refusalError('/dev/sda', [
      { check: 'removable', message: '/dev/sda is not a removable disk', hint: 'add --force removable' },
    ]);
    expect(e).toMatchObject({
      code: 'E_BURN_REMOVABLE',
      message: 'refusing to write /dev/sda: /dev/sda is not a removable disk',
      hint: 'add --force removable',
    });
  });

  it('several: all messages on one line; the hint names the --force that overrides them', () => {
    const e = refusalError('/dev/vda', [
      { check: 'root', message: 'holds /', hint: 'pick the USB drive' },
      { check: 'mounted', message: 'in use', hint: 'unmount' },
    ]);
    expect(e.code).toBe('E_BURN_ROOT');
    expect(e.message).toBe('refusing to write /dev/vda: holds /; in use');
    expect(e.hint).toBe('pick the USB drive; to override: --force root,mounted');
  });

  it('does not offer --force for what it cannot override', () => {
    const e = refusalError('/dev/sdb1', [
      { check: 'whole-disk', message: 'a partition', hint: 'give the disk' },
      { check: 'mounted', message: 'in use', hint: 'unmount' },
    ]);
    expect(e.code).toBe('E_BURN_WHOLE_DISK');
    expect(e.hint).toBe('give the disk');
  });
});
