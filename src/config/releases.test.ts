import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, UserError } from '../errors.js';
import {
  assertReleaseName,
  isStoreRelativePath,
  loadReleases,
  parseReleaseName,
  parseReleases,
  type Release,
  requireRelease,
  setReleaseInYaml,
  writeRelease,
} from './releases.js';

const SHA = 'a'.repeat(64);
const COMMIT = 'c'.repeat(40);

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

const release: Release = {
  date: '2026-11-25',
  git_commit: COMMIT,
  artifacts: [
    {
      name: 'debian12-base',
      kind: 'image',
      path: 'builds/debian12-base-2026.11-main-1a2b3c4d.qcow2',
      sha256: SHA,
      size: 1234,
      build: 'debian12-base-2026.11-main-1a2b3c4d',
      git_commit: '1a2b3c4d',
    },
  ],
};

describe('manifest.yaml schema', () => {
  it('accepts the documented shape, an empty file and an empty releases map', () => {
    const text = setReleaseInYaml(undefined, '2026.11', release);
    expect(parseReleases('manifest.yaml', text).releases['2026.11']).toEqual(release);
    expect(parseReleases('manifest.yaml', '')).toEqual({ releases: {} });
    expect(parseReleases('manifest.yaml', 'releases:\n')).toEqual({ releases: {} });
  });

  it('reports every problem at once with its line and key path', () => {
    const text = [
      'releases:', // 1
      '  "2026.11":', // 2
      '    date: 25/11/2026', // 3
      `    git_commit: ${COMMIT}`, // 4
      '    artifacts:', // 5
      '      - name: debian12-base', // 6
      '        kind: disk', // 7
      '        path: /srv/builds/x.qcow2', // 8
      '        sha256: abc', // 9
      '        size: -1', // 10
      '        colour: red', // 11
      '      - name: p', // 12
      '        kind: patch-bundle', // 13
      '        path: repos/../../etc/passwd', // 14
      `        sha256: ${SHA}`, // 15
      '        size: 1', // 16
      '  -bad:', // 17
      '    date: 2026-01-01', // 18
      `    git_commit: ${COMMIT}`, // 19
      'extra: 1', // 20
    ].join('\n');
    const issues = issuesOf(() => parseReleases('manifest.yaml', text));
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        '',
        'releases.-bad',
        'releases.2026.11.date',
        'releases.2026.11.artifacts.0',
        'releases.2026.11.artifacts.0.kind',
        'releases.2026.11.artifacts.0.path',
        'releases.2026.11.artifacts.0.sha256',
        'releases.2026.11.artifacts.0.size',
        'releases.2026.11.artifacts.1.path',
      ].sort(),
    );
    expect(byPath['releases.2026.11.date']?.line).toBe(3);
    expect(byPath['releases.2026.11.artifacts.0.kind']?.line).toBe(7);
    expect(byPath['releases.2026.11.artifacts.0.path']?.line).toBe(8);
    expect(byPath['releases.2026.11.artifacts.0.path']?.message).toMatch(/relative to the store root/);
    expect(byPath['releases.2026.11.artifacts.0.sha256']?.line).toBe(9);
    expect(byPath['releases.2026.11.artifacts.0.size']?.line).toBe(10);
    expect(byPath['releases.2026.11.artifacts.0']?.message).toMatch(/unknown key\(s\) colour/);
    expect(byPath['releases.2026.11.artifacts.0']?.line).toBe(11);
    expect(byPath['releases.2026.11.artifacts.1.path']?.line).toBe(14);
    expect(byPath['releases.-bad']?.message).toMatch(/invalid key: release names must start/);
    expect(byPath['releases.-bad']?.line).toBe(17);
    expect(byPath['']?.message).toMatch(/unknown key\(s\) extra/);
    expect(byPath['']?.line).toBe(20);
    const message = new ConfigError(issues).message;
    expect(message).toContain('manifest.yaml:8: releases.2026.11.artifacts.0.path:');
  });

  it('refuses an unquoted release name that YAML reads as a number', () => {
    const text = `releases:\n  2026.10:\n    date: "2026-10-01"\n    git_commit: "${COMMIT}"\n`;
    const issues = issuesOf(() => parseReleases('manifest.yaml', text));
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'releases.2026.10',
        line: 2,
        message: expect.stringMatching(/quote it/),
      }),
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf(() => parseReleases('manifest.yaml', 'releases:\n  a: [1,\n'));
    expect(issues[0]?.message).toMatch(/YAML syntax/);
  });

  it.each([
    ['builds/x.qcow2', true],
    ['repos/Debian12/p.tar.zst', true],
    ['/abs/x', false],
    ['../x', false],
    ['builds/../x', false],
    ['./builds/x', false],
    ['builds//x', false],
    ['builds/x/', false],
    ['', false],
    ['builds\\x', false],
  ])('isStoreRelativePath(%j) = %s', (p, ok) => {
    expect(isStoreRelativePath(p)).toBe(ok);
  });

  it('treats release names that are JavaScript object keys like any other', () => {
    const text = setReleaseInYaml(setReleaseInYaml(undefined, 'constructor', release), 'toString', release);
    const r = parseReleases('m.yaml', text);
    expect(requireRelease('m.yaml', r, 'constructor')).toEqual(release);
    expect(requireRelease('m.yaml', r, 'toString')).toEqual(release);
    expect(Object.keys(r.releases).sort()).toEqual(['constructor', 'toString']);
    for (const unknown of ['hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      expect(() => requireRelease('m.yaml', r, unknown)).toThrow(
        expect.objectContaining({ code: 'E_NO_RELEASE' }),
      );
    }
  });

  it('reports a release named twice with its line', () => {
    const text = `releases:\n  r1:\n    date: "2026-11-01"\n    git_commit: abc\n    artifacts: []\n  r1:\n    date: "2026-11-02"\n    git_commit: abc\n    artifacts: []\n`;
    expect(() => parseReleases('m.yaml', text)).toThrow(
      /m\.yaml:6: \(top level\): YAML syntax: Map keys must be unique \("r1"\)/,
    );
  });

  it('parses 20,000 releases (linear: the duplicate-key check of yaml itself was quadratic, 11 s)', () => {
    const parts = ['releases:'];
    for (let i = 0; i < 20_000; i++)
      parts.push(
        `  r${i}:`,
        '    date: "2026-11-01"',
        `    git_commit: ${'a'.repeat(40)}`,
        '    artifacts: []',
      );
    const r = parseReleases('m.yaml', `${parts.join('\n')}\n`);
    expect(Object.keys(r.releases)).toHaveLength(20_000);
  });

  it('names the known releases for an unknown one', () => {
    const r = parseReleases('m.yaml', setReleaseInYaml(undefined, 'r1', release));
    expect(requireRelease('m.yaml', r, 'r1')).toEqual(release);
    expect(() => requireRelease('m.yaml', r, 'r2')).toThrow(UserError);
    expect(() => requireRelease('m.yaml', r, 'r2')).toThrow(
      expect.objectContaining({ code: 'E_NO_RELEASE', hint: 'known releases: r1' }),
    );
  });
});

describe('manifest.yaml writer', () => {
  it('creates the file with its comment header and readable YAML', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await writeRelease(file, '2026.11', release, undefined);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^# osbake release manifest/);
    expect(text).toContain('  "2026.11":\n    date: "2026-11-25"\n');
    expect(text).toContain(`    git_commit: ${COMMIT}\n`);
    expect(text).toContain('      - name: debian12-base\n        kind: image\n');
    expect(await loadReleases(file)).toEqual({ releases: { '2026.11': release } });
    expect((await readdir(dir)).sort()).toEqual(['manifest.yaml']);
  });

  it('keeps comments and other releases when it adds or replaces one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await writeRelease(file, 'r1', release, undefined);
    await writeFile(file, (await readFile(file, 'utf8')).replace('releases:', '# hand note\nreleases:'));
    const r2 = { ...release, date: '2026-12-01' };
    await writeRelease(file, 'r2', r2, undefined);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# hand note');
    expect(text).toMatch(/^# osbake release manifest/);
    expect(Object.keys((await loadReleases(file)).releases)).toEqual(['r1', 'r2']);
    await writeRelease(file, 'r1', { ...release, artifacts: [] }, release);
    expect((await loadReleases(file)).releases.r1?.artifacts).toEqual([]);
  });

  it('is no conflict when another process recorded exactly the planned entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await writeRelease(file, 'r1', release, undefined);
    const seen: unknown[] = [];
    await writeRelease(file, 'r1', release, undefined, async (r) => {
      seen.push(r);
    });
    expect(seen).toEqual([release]);
  });

  it('puts manifest.yaml back when what is written under the same lock fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await writeRelease(file, 'r1', release, undefined);
    const before = await readFile(file, 'utf8');
    const other = { ...release, date: '2030-01-01' };
    await expect(
      writeRelease(file, 'r1', other, release, async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }),
    ).rejects.toThrow(/ENOSPC/);
    expect(await readFile(file, 'utf8')).toBe(before);
    await expect(
      writeRelease(join(dir, 'new.yaml'), 'r2', release, undefined, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow(/boom/);
    expect(await readdir(dir)).toEqual(['manifest.yaml']);
  });

  it('writes nothing when the release changed since it was planned', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await writeRelease(file, 'r1', release, undefined);
    const before = await readFile(file, 'utf8');
    await expect(writeRelease(file, 'r1', { ...release, artifacts: [] }, undefined)).rejects.toMatchObject({
      code: 'E_CONCURRENT',
    });
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('loses no release with concurrent writers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    const file = join(dir, 'manifest.yaml');
    await Promise.all(Array.from({ length: 8 }, (_, i) => writeRelease(file, `r${i}`, release, undefined)));
    expect(Object.keys((await loadReleases(file)).releases).sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => `r${i}`),
    );
  });

  it('reads a missing file as no releases', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-rel-'));
    expect(await loadReleases({ root: dir })).toEqual({ releases: {} });
  });
});

describe('release names (one rule for build, release and every verb)', () => {
  it.each(['2026.11', 'r1', 'dev', 'v1.2.3-rc_1', 'constructor', 'a'.repeat(64)])('accepts %s', (n) => {
    expect(() => assertReleaseName(n)).not.toThrow();
    // Parsed once into its own type: the same text, now a ReleaseName.
    expect(parseReleaseName(n)).toBe(n);
  });
  it.each(['1.0/..', '../x', '1..0', 'a b', '-rf', '.hidden', '', 'a'.repeat(65), 'r\n1', 'ü'])(
    'refuses %j with the rule as the hint',
    (n) => {
      expect(() => assertReleaseName(n)).toThrow(/is not a valid release name/);
      expect(() => parseReleaseName(n)).toThrow(/is not a valid release name/);
    },
  );
});
