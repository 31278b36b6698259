import { describe, expect, it } from 'vitest';
import { chooseAccelerator, parseAccelerator, probeBootSector } from './accel.js';

describe('chooseAccelerator', () => {
  const ok = { devKvm: true, cpuVirt: true, guestRan: true };
  it.each([
    ['auto', ok, 'kvm', /probe guest ran/],
    ['auto', { ...ok, devKvm: false, guestRan: undefined }, 'tcg', /\/dev\/kvm is missing/],
    ['auto', { ...ok, cpuVirt: false, guestRan: undefined }, 'tcg', /no vmx\/svm/],
    ['auto', { ...ok, guestRan: false }, 'tcg', /did not run under KVM.*TCG/],
    ['tcg', ok, 'tcg', /requested/],
    ['kvm', { ...ok, guestRan: false }, 'kvm', /forced/],
  ] as const)('%s with %j -> %s', (requested, facts, accel, reason) => {
    const c = chooseAccelerator(requested, facts);
    expect(c.accelerator).toBe(accel);
    expect(c.reason).toMatch(reason);
  });

  it('makes a valid boot sector', () => {
    const s = probeBootSector();
    expect(s.length).toBe(512);
    expect(s[510]).toBe(0x55);
    expect(s[511]).toBe(0xaa);
  });
});

describe('parseAccelerator', () => {
  it('takes auto, kvm, tcg or nothing; refuses the rest with the choices', () => {
    expect(parseAccelerator(undefined)).toBeUndefined();
    expect(parseAccelerator('kvm')).toBe('kvm');
    expect(() => parseAccelerator('hvf')).toThrow(/--accelerator hvf is not one of auto, kvm, tcg/);
  });
});
