import { describe, expect, it } from 'vitest';
import { bmaptoolCreateArgs } from './bmap-tool.js';
import { kernelVersionFrom } from './installer-os.js';

describe('installer OS', () => {
  it('finds the kernel version in /boot', () => {
    expect(
      kernelVersionFrom(['System.map-6.1.0-56-amd64', 'config-6.1.0-56-amd64', 'vmlinuz-6.1.0-56-amd64']),
    ).toBe('6.1.0-56-amd64');
    expect(() => kernelVersionFrom(['config-6.1.0-56-amd64'])).toThrow(/no \/boot\/vmlinuz/);
  });
  it('makes block maps with bmaptool create', () => {
    expect(bmaptoolCreateArgs('/w/a.raw', '/w/a.bmap')).toEqual([
      'bmaptool',
      'create',
      '--output',
      '/w/a.bmap',
      '/w/a.raw',
    ]);
  });
});
