import { describe, expect, it } from 'vitest';
import { guestFailures } from './boot-test.js';

const healthy = {
  state: 'running',
  boot_mode: 'uefi' as const,
  failed_units: [],
  release: { OSBAKE_IMAGE: 'debian12-base' },
  release_mismatches: [],
  checks: [{ name: '10-packages', passed: true, duration_s: 1 }],
};

describe('guestFailures (the verdict on what the booted guest said)', () => {
  it('a running guest under the asked firmware with its release and checks passes', () => {
    expect(guestFailures(healthy, 'uefi')).toEqual([]);
  });

  it('gives one reason per failure, in a fixed order', () => {
    expect(
      guestFailures(
        {
          ...healthy,
          state: 'degraded',
          failed_units: ['chrony.service', 'ssh.service'],
          release_mismatches: ['OSBAKE_RELEASE=r1 (expected r2)'],
          checks: [
            { name: '10-packages', passed: false, duration_s: 1, output: ['missing jq'] },
            { name: '20-services', passed: true, duration_s: 1 },
          ],
        },
        'secureboot',
      ),
    ).toEqual([
      'system state degraded (failed: chrony.service, ssh.service)',
      'booted as uefi, not secureboot (inside the guest)',
      '/etc/osbake-release: OSBAKE_RELEASE=r1 (expected r2)',
      'check 10-packages failed',
    ]);
  });

  it('an empty state (systemctl said nothing) is reported as unknown', () => {
    expect(guestFailures({ ...healthy, state: '' }, 'uefi')).toEqual(['system state unknown']);
  });
});
