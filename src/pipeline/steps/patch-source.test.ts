import { describe, expect, it } from 'vitest';
import { bundleTrust } from './patch-source.js';

describe('bundleTrust (what a build does with a release patch bundle)', () => {
  it('checks a signed bundle against keys/, and refuses it when keys/ is empty, required or not', () => {
    expect(bundleTrust(true, true, false)).toBe('check');
    expect(bundleTrust(true, true, true)).toBe('check');
    expect(bundleTrust(true, false, false)).toBe('refuse-no-keys');
    expect(bundleTrust(true, false, true)).toBe('refuse-no-keys');
  });

  it('trusts an unsigned bundle by its recorded checksum unless signing.required', () => {
    expect(bundleTrust(false, true, false)).toBe('trust-unsigned');
    expect(bundleTrust(false, false, false)).toBe('trust-unsigned');
    expect(bundleTrust(false, true, true)).toBe('refuse-unsigned');
    expect(bundleTrust(false, false, true)).toBe('refuse-unsigned');
  });
});
