import { describe, expect, it } from 'vitest';
import { isBuildRecord, parsePorcelain } from './provenance.js';

describe('provenance', () => {
  it('parses porcelain -z output including renames', () => {
    expect(parsePorcelain(' M src/a.ts\0?? new.txt\0R  new-name.ts\0old-name.ts\0')).toEqual([
      'src/a.ts',
      'new.txt',
      'new-name.ts',
    ]);
  });

  it('does not count manifest.json (a build record) as dirty', () => {
    expect(isBuildRecord('images/debian12-base/manifest.json')).toBe(true);
    expect(isBuildRecord('images/debian12-base/image.yaml')).toBe(false);
    expect(isBuildRecord('.osbake/owned/0123456789abcdef0123456789abcdef.json')).toBe(true);
    expect(isBuildRecord('.osbake/netboot/nodes/52-54-00-12-34-56.json')).toBe(true);
    expect(isBuildRecord('osbake.yaml')).toBe(false);
    expect(isBuildRecord('manifest.json')).toBe(false);
  });
});
