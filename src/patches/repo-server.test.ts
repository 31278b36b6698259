import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RepoServer, resolveInside, startRepoServer } from './repo-server.js';

describe('resolveInside', () => {
  it.each([
    ['/Packages', '/r/Packages'],
    ['/pool/a%20b.deb', '/r/pool/a b.deb'],
    ['/../etc/passwd', undefined],
    ['/%2e%2e/%2e%2e/etc/passwd', undefined],
    ['/pool/../Packages', '/r/Packages'],
    ['/a/%00', undefined],
    ['/%E0%A4%A', undefined],
  ])('%s -> %s', (url, expected) => {
    expect(resolveInside('/r', url)).toBe(expected);
  });
});

describe('repo server', () => {
  let dir: string;
  let srv: RepoServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-repo-'));
    await mkdir(join(dir, 'pool'));
    await writeFile(join(dir, 'Packages'), 'Package: x\n');
    await symlink('/etc/hostname', join(dir, 'escape'));
    srv = await startRepoServer(dir);
  });
  afterAll(async () => {
    await srv.close();
  });

  it('serves files, 404s directories and escapes, 405s other methods', async () => {
    const base = `http://127.0.0.1:${srv.port}`;
    const ok = await fetch(`${base}/Packages`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('Package: x\n');
    expect((await fetch(`${base}/pool/`)).status).toBe(404);
    expect((await fetch(`${base}/escape`)).status).toBe(404);
    expect((await fetch(`${base}/Packages`, { method: 'POST' })).status).toBe(405);
    expect(srv.guestUrl).toBe(`http://10.0.2.2:${srv.port}/`);
  });
});
