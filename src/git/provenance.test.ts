import { describe, expect, it } from 'vitest';
import { detachedBranchName, isBuildRecord, parsePorcelain } from './provenance.js';

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

describe('detachedBranchName', () => {
  it('is OSBAKE_GIT_BRANCH when set and a branch name, else "detached"', () => {
    expect(detachedBranchName({})).toBe('detached');
    expect(detachedBranchName({ OSBAKE_GIT_BRANCH: 'main' })).toBe('main');
    expect(detachedBranchName({ OSBAKE_GIT_BRANCH: 'release/2026.11' })).toBe('release/2026.11');
    expect(() => detachedBranchName({ OSBAKE_GIT_BRANCH: 'a b' })).toThrow(/E_USAGE|not a branch name/);
    expect(() => detachedBranchName({ OSBAKE_GIT_BRANCH: '../x' })).toThrow();
  });
});
