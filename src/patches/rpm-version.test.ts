import { describe, expect, it } from 'vitest';
import { compareEvr, formatNevra, parseNevra, parseRpmQuery, rpmvercmp } from './rpm-version.js';

describe('rpmvercmp (cases from rpm tests/rpmvercmp.at)', () => {
  it.each([
    ['1.0', '1.0', 0],
    ['1.0', '2.0', -1],
    ['2.0.1', '2.0', 1],
    ['2.0.1a', '2.0.1', 1],
    ['5.5p1', '5.5p2', -1],
    ['5.5p10', '5.5p1', 1],
    ['10xyz', '10.1xyz', -1],
    ['xyz10', 'xyz10.1', -1],
    ['1.0aa', '1.0a', 1],
    ['a', '1', -1],
    ['2.0', '2_0', 0],
    ['2a', '2.0', -1],
    ['1.010', '1.9', 1],
    ['1.0001', '1.1', 0],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~rc1~git123', '1.0~rc1', -1],
    ['1.0^', '1.0', 1],
    ['1.0^git1', '1.0', 1],
    ['1.0^git1', '1.01', -1],
    ['1.0^20160101', '1.0.1', -1],
    ['1.0^git1', '1.0^git2', -1],
    ['1.0~rc1^git1', '1.0~rc1', 1],
    ['1.0^git1~pre', '1.0^git1', -1],
    ['2.36-9+deb12u4', '2.36-9+deb12u13', -1],
    ['4.18.0-553.el8_10', '4.18.0-477.el8', 1],
  ] as const)('%s vs %s → %i', (a, b, want) => {
    expect(rpmvercmp(a, b)).toBe(want);
    expect(rpmvercmp(b, a)).toBe(-want || 0);
  });

  it('compares epoch before version and release', () => {
    const p = (epoch: number, version: string, release: string) => ({ epoch, version, release });
    expect(compareEvr(p(1, '1.0', '1'), p(0, '9.9', '9'))).toBe(1);
    expect(compareEvr(p(0, '1.1', '1'), p(0, '1.1', '2.el8'))).toBe(-1);
    expect(compareEvr(p(2, '1.1', '3'), p(2, '1.1', '3'))).toBe(0);
  });
});

describe('NEVRA', () => {
  it.each([
    [
      'bash-4.4.20-4.el8_6.x86_64',
      { name: 'bash', epoch: 0, version: '4.4.20', release: '4.el8_6', arch: 'x86_64' },
    ],
    [
      'openssl-libs-1:1.1.1k-12.el8_9.x86_64',
      { name: 'openssl-libs', epoch: 1, version: '1.1.1k', release: '12.el8_9', arch: 'x86_64' },
    ],
    [
      'python3-dnf-plugin-versionlock-4.0.21-25.el8.noarch',
      {
        name: 'python3-dnf-plugin-versionlock',
        epoch: 0,
        version: '4.0.21',
        release: '25.el8',
        arch: 'noarch',
      },
    ],
    [
      'gpg-pubkey-6d745a60-60287f36.(none)',
      { name: 'gpg-pubkey', epoch: 0, version: '6d745a60', release: '60287f36', arch: '(none)' },
    ],
  ])('parses %s', (line, want) => {
    expect(parseNevra(line)).toEqual(want);
    expect(formatNevra(want)).toBe(line);
  });

  it.each(['', 'bash', 'bash-4.4', 'x-a:1-2.noarch', 'two words-1-1.noarch'])('rejects %j', (line) => {
    expect(parseNevra(line)).toBeUndefined();
  });

  it('reads rpm -qa tab-separated output, skipping junk', () => {
    expect(
      parseRpmQuery('alpha\t0\t1.0\t1\tnoarch\nwarning: something\nkernel\t0\t4.18.0\t553.el8\tx86_64\n'),
    ).toEqual([
      { name: 'alpha', epoch: 0, version: '1.0', release: '1', arch: 'noarch' },
      { name: 'kernel', epoch: 0, version: '4.18.0', release: '553.el8', arch: 'x86_64' },
    ]);
  });
});
