import { describe, expect, it } from 'vitest';
import type { PackageRecord } from '../artifacts/package-list.js';
import { diffPackages, diffSides, formatImageDiff, type PackageSide } from './diff.js';

const p = (s: string): PackageRecord => {
  const [name = '', version = '', arch = 'amd64'] = s.split(' ');
  return { name, version, arch };
};
const list = (...s: string[]) => s.map(p);

describe('diffPackages', () => {
  it.each<[string, PackageRecord[], PackageRecord[], object]>([
    [
      'identical',
      list('a 1', 'b 2'),
      list('b 2', 'a 1'),
      { added: [], removed: [], changed: [], unchanged: 2 },
    ],
    [
      'empty to some',
      [],
      list('b 1', 'a 1'),
      { added: list('a 1', 'b 1'), removed: [], changed: [], unchanged: 0 },
    ],
    ['some to empty', list('a 1'), [], { added: [], removed: list('a 1'), changed: [], unchanged: 0 }],
    [
      'added, removed and changed, sorted by name',
      list('zlib 1', 'openssl 3.0.11-1~deb12u1', 'gone 1', 'same 1'),
      list('openssl 3.0.13-1~deb12u1', 'zlib 2', 'jq 1.6', 'same 1'),
      {
        added: list('jq 1.6'),
        removed: list('gone 1'),
        changed: [
          { name: 'openssl', arch: 'amd64', from: '3.0.11-1~deb12u1', to: '3.0.13-1~deb12u1' },
          { name: 'zlib', arch: 'amd64', from: '1', to: '2' },
        ],
        unchanged: 1,
      },
    ],
    [
      'multi-arch: the same name on another architecture is another package',
      list('libc6 2.36 amd64'),
      list('libc6 2.36 amd64', 'libc6 2.36 i386'),
      { added: list('libc6 2.36 i386'), removed: [], changed: [], unchanged: 1 },
    ],
  ])('%s', (_n, a, b, expected) => {
    expect(diffPackages(a, b)).toEqual(expected);
  });
});

describe('diffSides', () => {
  it('compares per image and handles images on one side only', () => {
    const a: PackageSide = new Map([
      ['base', { artifact: 'base-1', packages: list('a 1') }],
      ['old', { artifact: 'old-1', packages: list('x 1') }],
    ]);
    const b: PackageSide = new Map([
      ['base', { artifact: 'base-2', packages: list('a 2') }],
      ['new', { artifact: 'new-1', packages: list('y 1') }],
    ]);
    const d = diffSides(a, b);
    expect(d.map((x) => [x.image, x.a, x.b, x.added.length, x.removed.length, x.changed.length])).toEqual([
      ['base', 'base-1', 'base-2', 0, 0, 1],
      ['new', null, 'new-1', 1, 0, 0],
      ['old', 'old-1', null, 0, 1, 0],
    ]);
  });

  it('prints aligned sections with counts', () => {
    const [d] = diffSides(
      new Map([['base', { artifact: 'b1', packages: list('openssl 3.0.11', 'gone 1', 'k 1') }]]),
      new Map([['base', { artifact: 'b2', packages: list('openssl 3.0.13', 'jq 1.6.1', 'k 1') }]]),
    );
    expect(formatImageDiff(d as never)).toBe(
      [
        'base: b1 → b2',
        '  added (1):',
        '    +  jq  1.6.1  amd64',
        '  removed (1):',
        '    -  gone  1  amd64',
        '  changed (1):',
        '    ~  openssl  3.0.11  →  3.0.13  amd64',
        '  1 added, 1 removed, 1 changed, 1 unchanged',
        '',
      ].join('\n'),
    );
  });
});
