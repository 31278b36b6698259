import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRequestPath, containedRealPath, isInside, splitRequestTarget, validHost } from './paths.js';

describe('checkRequestPath', () => {
  it.each([
    ['/', [], true],
    ['/builds/', ['builds'], true],
    ['/builds/a.qcow2', ['builds', 'a.qcow2'], false],
    ['/builds/a.qcow2?x=1#y', ['builds', 'a.qcow2'], false],
    ['/repos/Debian12/p%201.tar.zst', ['repos', 'Debian12', 'p 1.tar.zst'], false],
    ['/builds/caf%C3%A9.txt', ['builds', 'café.txt'], false],
    ['/a..b/c...d', ['a..b', 'c...d'], false],
  ])('accepts %s', (url, segments, directory) => {
    expect(checkRequestPath(url)).toEqual({ ok: true, segments, directory });
  });

  it.each([
    ['/..', 'dot segment'],
    ['/../etc/passwd', 'dot segment'],
    ['/builds/./a', 'dot segment'],
    ['/%2e%2e/etc/passwd', 'dot segment'],
    ['/%2E%2e/etc', 'dot segment'],
    ['/.%2E/etc', 'dot segment'],
    ['/%252e%252e/etc', 'dot segment'],
    ['/%25252e%25252e/etc', 'dot segment'],
    ['/%2525252525252e/etc', 'encoded too many times'],
    ['/..%2fetc%2fpasswd', 'encoded slash'],
    ['/a%2fb', 'encoded slash'],
    ['/a%252fb', 'encoded slash'],
    ['/..%5cetc', 'backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00b', 'NUL byte'],
    ['/a%2500b', 'NUL byte'],
    ['/%c0%ae%c0%ae/etc', 'malformed percent-encoding'],
    ['/%e0%80%ae', 'malformed percent-encoding'],
    ['/%', 'malformed percent-encoding'],
    ['/%zz', 'malformed percent-encoding'],
    ['//etc/passwd', 'empty path segment'],
    ['/builds//a', 'empty path segment'],
    ['builds/a', 'path must start with /'],
  ])('refuses %s (%s) with 400', (url, reason) => {
    expect(checkRequestPath(url)).toEqual({ ok: false, status: 400, reason });
  });

  it.each(['/builds/.a.qcow2.partial-12', '/builds/.rsync-partial/x', '/%2ehidden', '/builds/.x.part'])(
    'hides dotfiles: %s is 404',
    (url) => {
      expect(checkRequestPath(url)).toEqual({ ok: false, status: 404, reason: 'hidden file' });
    },
  );
});

describe('containedRealPath', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'osbake-paths-')));
  mkdirSync(join(root, 'builds'));
  writeFileSync(join(root, 'builds/a.qcow2'), 'x');
  symlinkSync('a.qcow2', join(root, 'builds/latest.qcow2'));
  symlinkSync('/etc', join(root, 'builds/etc'));
  symlinkSync('../..', join(root, 'builds/up'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('follows symlinks that stay inside', async () => {
    expect(await containedRealPath(root, ['builds', 'latest.qcow2'])).toEqual({
      path: join(root, 'builds/a.qcow2'),
      escaped: false,
    });
  });

  it('flags symlinks that leave the root', async () => {
    expect((await containedRealPath(root, ['builds', 'etc', 'hostname']))?.escaped).toBe(true);
    expect((await containedRealPath(root, ['builds', 'up']))?.escaped).toBe(true);
  });

  it('is undefined for what does not exist', async () => {
    expect(await containedRealPath(root, ['builds', 'nope'])).toBeUndefined();
  });

  it('isInside does not mistake a sibling with the same prefix', () => {
    expect(isInside('/srv/store', '/srv/store')).toBe(true);
    expect(isInside('/srv/store', '/srv/store/a')).toBe(true);
    expect(isInside('/srv/store', '/srv/store2/a')).toBe(false);
    expect(isInside('/', '/etc')).toBe(true);
  });
});

describe('validHost (as nginx checks Host)', () => {
  it('accepts names, addresses, literals and ports; refuses empty, "..", "/", spaces and control bytes', () => {
    for (const h of ['a', 'osbake.example.org', 'node:8080', '[::1]:80', '10.0.0.1', 'a.', 'a:99999'])
      expect(validHost(h), h).toBe(true);
    for (const h of ['', '.', 'a..b', 'a/b', 'a b', 'a\tb', 'a\x01b', 'a\x7fb', 'a\\b', ':80'])
      expect(validHost(h), JSON.stringify(h)).toBe(false);
  });
});

describe('splitRequestTarget', () => {
  it('takes host and path from the absolute form; leaves the origin form alone', () => {
    expect(splitRequestTarget('http://a:8080/builds/x?y')).toEqual({ host: 'a:8080', path: '/builds/x?y' });
    expect(splitRequestTarget('HTTP://a')).toEqual({ host: 'a', path: '/' });
    expect(splitRequestTarget('/builds/x')).toEqual({ path: '/builds/x' });
    expect(splitRequestTarget('ftp://a/b')).toEqual({ path: 'ftp://a/b' });
  });
});
