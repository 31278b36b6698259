import { describe, expect, it } from 'vitest';
import { artifactName, sanitizeBranch } from './naming.js';

describe('artifactName', () => {
  it.each([
    [
      { image: 'debian12-base', release: '2026.11', branch: 'main', shortCommit: 'abc12345', dirty: false },
      'debian12-base-2026.11-main-abc12345',
    ],
    [
      { image: 'debian12-base', release: '2026.11', branch: 'main', shortCommit: 'abc12345', dirty: true },
      'debian12-base-2026.11-main-abc12345-dirty',
    ],
    [
      {
        image: 'rocky8-base',
        release: 'r1',
        branch: 'feature/new-kernel',
        shortCommit: '0123abcd',
        dirty: false,
      },
      'rocky8-base-r1-feature-new-kernel-0123abcd',
    ],
    [{ image: 'x', branch: 'main', shortCommit: 'deadbeef', dirty: false }, 'x-main-deadbeef'],
  ])('%j -> %s', (parts, expected) => {
    expect(artifactName(parts)).toBe(expected);
  });

  it.each([
    ['feature/a b', 'feature-a-b'],
    ['..hidden', 'hidden'],
    ['a//b', 'a-b'],
    ['', 'unknown'],
    ['release-1.2', 'release-1.2'],
  ])('sanitizeBranch(%j) = %j', (input, out) => {
    expect(sanitizeBranch(input)).toBe(out);
  });
});
