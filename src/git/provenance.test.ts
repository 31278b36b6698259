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
    expect(isBuildRecord('manifest.json')).toBe(false);
  });
});
