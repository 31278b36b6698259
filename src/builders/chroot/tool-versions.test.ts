import { describe, expect, it } from 'vitest';
import { createNullLogger } from '../../log/logger.js';
import { toolChanges, toolVersions } from './tool-versions.js';

describe('toolChanges', () => {
  it('names each tool whose version differs, recorded → now', () => {
    expect(
      toolChanges(
        { mke2fs: 'mke2fs 1.47.0', 'qemu-img': 'qemu-img version 7.2.22' },
        { mke2fs: 'mke2fs 1.47.1', 'qemu-img': 'qemu-img version 7.2.22' },
      ),
    ).toEqual(['mke2fs: mke2fs 1.47.0 → mke2fs 1.47.1']);
  });

  it('a tool recorded but gone, or new, is a change too', () => {
    expect(toolChanges({ a: '1' }, { b: '2' })).toEqual(['a: 1 → (not here)', 'b: (not recorded) → 2']);
    expect(toolChanges({}, {})).toEqual([]);
  });
});

describe('toolVersions', () => {
  it('asks only the tools named; an unknown tool is "unknown", not an error', async () => {
    const v = await toolVersions(createNullLogger(), ['no-such-tool']);
    expect(v).toEqual({ 'no-such-tool': 'unknown' });
  });
});
