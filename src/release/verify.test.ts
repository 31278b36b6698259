import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirrorUrl } from '../artifacts/naming.js';
import { type Release, type ReleaseArtifact, writeRelease } from '../config/releases.js';
import { UserError } from '../errors.js';
import type { ProgressSink } from '../log/progress.js';
import { runVerify } from './run-verify.js';
import {
  checkMirrorArtifact,
  checkStoreArtifact,
  describeResult,
  sidecarProblem,
} from './verify-artifact.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A project whose store holds good.qcow2, bad.qcow2 (corrupted after recording) and no gone.qcow2. */
async function makeProject() {
  const root = await mkdtemp(join(tmpdir(), 'osbake-verify-'));
  await writeFile(join(root, 'osbake.yaml'), 'store: store\n');
  const store = join(root, 'store');
  await mkdir(join(store, 'builds'), { recursive: true });
  await mkdir(join(store, 'repos/Debian12'), { recursive: true });
  const good = Buffer.alloc(300_000, 7);
  const bad = Buffer.from('the real image');
  const bundle = Buffer.from('bundle bytes');
  await writeFile(join(store, 'builds/good.qcow2'), good);
  await writeFile(join(store, 'builds/bad.qcow2'), Buffer.from('THE REAL IMAGE')); // same size, other bytes
  await writeFile(join(store, 'repos/Debian12/p 1.tar.zst'), Buffer.from('bundle bytez!')); // other size
  const art = (name: string, kind: ReleaseArtifact['kind'], path: string, b: Buffer): ReleaseArtifact => ({
    name,
    kind,
    path,
    sha256: sha(b),
    size: b.length,
  });
  const release: Release = {
    date: '2026-11-25',
    git_commit: 'c'.repeat(40),
    artifacts: [
      art('good', 'image', 'builds/good.qcow2', good),
      art('bad', 'image', 'builds/bad.qcow2', bad),
      art('gone', 'image', 'builds/gone.qcow2', good),
      art('p 1', 'patch-bundle', 'repos/Debian12/p 1.tar.zst', bundle),
    ],
  };
  await writeRelease(join(root, 'manifest.yaml'), '2026.11', release, undefined);
  return { root, store, release };
}

/** Serve dir over HTTP on 127.0.0.1 (Content-Length omitted for /nolength/...). */
function serve(dir: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const nolength = path.startsWith('/nolength/');
    if (nolength) path = path.slice('/nolength'.length);
    const file = normalize(join(dir, path));
    try {
      const st = await stat(file);
      res.writeHead(200, nolength ? {} : { 'content-length': st.size });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const silent = { write: () => true };

describe('osbake verify', () => {
  let project: Awaited<ReturnType<typeof makeProject>>;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    project = await makeProject();
    server = await serve(project.store);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('checks the local store: OK, MISMATCH, MISSING (ENOENT), SIZE', async () => {
    const results = [];
    for (const a of project.release.artifacts) results.push(await checkStoreArtifact(project.store, a));
    expect(results.map((r) => [r.artifact.name, r.status, r.got])).toEqual([
      ['good', 'OK', project.release.artifacts[0]?.sha256],
      ['bad', 'MISMATCH', sha('THE REAL IMAGE')],
      ['gone', 'MISSING', 'ENOENT'],
      ['p 1', 'SIZE', '13'],
    ]);
  });

  it('checks a mirror over HTTP: OK, MISMATCH, MISSING (HTTP 404), SIZE', async () => {
    const results = [];
    for (const a of project.release.artifacts) results.push(await checkMirrorArtifact(`${base}/`, a));
    expect(results.map((r) => [r.artifact.name, r.status, r.got])).toEqual([
      ['good', 'OK', project.release.artifacts[0]?.sha256],
      ['bad', 'MISMATCH', sha('THE REAL IMAGE')],
      ['gone', 'MISSING', 'HTTP 404'],
      ['p 1', 'SIZE', '13'],
    ]);
    expect(results[3]?.location).toBe(`${base}/repos/Debian12/p%201.tar.zst`);
  });

  it('refuses an artifact reached through a symlink (the file itself or a directory on the way)', async () => {
    const good = project.release.artifacts[0] as ReleaseArtifact;
    await mkdir(join(project.store, 'real'), { recursive: true });
    await writeFile(join(project.store, 'real/good.qcow2'), Buffer.alloc(300_000, 7));
    await symlink('../real/good.qcow2', join(project.store, 'builds/link.qcow2'));
    await symlink('real', join(project.store, 'linked-dir'));
    const viaFile = await checkStoreArtifact(project.store, { ...good, path: 'builds/link.qcow2' });
    expect([viaFile.status, viaFile.got]).toEqual(['SYMLINK', join(project.store, 'builds/link.qcow2')]);
    const viaDir = await checkStoreArtifact(project.store, { ...good, path: 'linked-dir/good.qcow2' });
    expect([viaDir.status, viaDir.got]).toEqual(['SYMLINK', join(project.store, 'linked-dir')]);
    expect(describeResult(viaDir)).toMatch(/reached through the symbolic link/);
  });

  it('checks the .sha256 beside an artifact, in the store and on a mirror', async () => {
    const good = project.release.artifacts[0] as ReleaseArtifact;
    const sidecar = join(project.store, 'builds/good.qcow2.sha256');
    try {
      await writeFile(sidecar, `${good.sha256}  good.qcow2\n`);
      expect((await checkStoreArtifact(project.store, good)).status).toBe('OK');
      expect((await checkMirrorArtifact(base, good)).status).toBe('OK');
      await writeFile(sidecar, `${'0'.repeat(64)}  good.qcow2\n`);
      const local = await checkStoreArtifact(project.store, good);
      expect([local.status, local.got]).toEqual(['SIDECAR', `good.qcow2.sha256 says ${'0'.repeat(64)}`]);
      expect(describeResult(local)).toMatch(/sha256sum -c would fail/);
      const remote = await checkMirrorArtifact(base, good);
      expect(remote.status).toBe('SIDECAR');
    } finally {
      await rm(sidecar, { force: true });
    }
  });

  it.each([
    ['a', 'good.qcow2.sha256 is not one "<sha256>  good.qcow2" line'],
    [`${'a'.repeat(64)}  other.qcow2`, 'good.qcow2.sha256 names other.qcow2, not good.qcow2'],
    [
      `${'a'.repeat(64)}  good.qcow2\n${'a'.repeat(64)}  good.qcow2`,
      'good.qcow2.sha256 is not one "<sha256>  good.qcow2" line',
    ],
    [`${'a'.repeat(64)} *good.qcow2\n`, undefined],
  ])('sidecarProblem(%j)', (text, problem) => {
    expect(sidecarProblem(text, { sha256: 'a'.repeat(64), path: 'builds/good.qcow2' })).toBe(problem);
  });

  it('hashes as bytes arrive and reports progress, also without Content-Length', async () => {
    const good = project.release.artifacts[0] as ReleaseArtifact;
    const seen: number[] = [];
    const progress: ProgressSink = {
      start: (_l, total) => seen.push(-(total ?? 0)),
      add: (n) => seen.push(n),
      end() {},
    };
    const r = await checkMirrorArtifact(`${base}/nolength`, good, progress);
    expect(r.status).toBe('OK');
    expect(seen[0]).toBe(-good.size);
    expect(seen.slice(1).reduce((a, b) => a + b, 0)).toBe(good.size);
    const short = await checkMirrorArtifact(`${base}/nolength`, { ...good, size: good.size + 1 });
    expect([short.status, short.got]).toEqual(['SIZE', String(good.size)]);
  });

  it('reports a mirror that does not answer as MISSING', async () => {
    const closed = await serve(project.store);
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await checkMirrorArtifact(
      `http://127.0.0.1:${port}`,
      project.release.artifacts[0] as ReleaseArtifact,
    );
    expect(r.status).toBe('MISSING');
    expect(r.got).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('prints one line per artifact and fails with E_VERIFY', async () => {
    let text = '';
    const out = {
      write: (s: string) => {
        text += s;
        return true;
      },
    };
    const err = await runVerify({
      projectDir: project.root,
      release: '2026.11',
      mirror: base,
      out,
      progress: { start() {}, add() {}, end() {} },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err).toMatchObject({
      code: 'E_VERIFY',
      message: '3 of 4 artifact(s) of release 2026.11 failed verification',
    });
    expect(text).toMatch(/^OK +image +good +builds\/good\.qcow2/m);
    expect(text).toMatch(
      new RegExp(`^MISMATCH .*sha256 expected ${sha('the real image')}, got ${sha('THE REAL IMAGE')}`, 'm'),
    );
    expect(text).toMatch(/^MISSING .*not found \(HTTP 404\)/m);
    expect(text).toMatch(/^SIZE .*size expected 12 bytes, got 13 bytes/m);
  });

  it('fails when store/releases/R.json lists other artifacts than manifest.yaml', async () => {
    const json = join(project.store, 'releases/2026.11.json');
    await mkdir(join(project.store, 'releases'), { recursive: true });
    const stale = {
      release: '2026.11',
      date: '2026-11-01',
      git_commit: 'c'.repeat(40),
      artifacts: project.release.artifacts.slice(0, 1),
    };
    await writeFile(json, JSON.stringify(stale));
    try {
      await expect(runVerify({ projectDir: project.root, release: '2026.11', out: silent })).rejects.toThrow(
        /releases\/2026\.11\.json disagrees with .*manifest\.yaml for release 2026\.11: /,
      );
      await writeFile(json, JSON.stringify({ ...stale, artifacts: project.release.artifacts }));
      // Same list: the store's own failures remain (bad, gone, p 1), not a disagreement.
      await expect(runVerify({ projectDir: project.root, release: '2026.11', out: silent })).rejects.toThrow(
        /3 of 4 artifact\(s\) of release 2026\.11 failed verification/,
      );
    } finally {
      await rm(json, { force: true });
    }
  });

  it('names the known releases for an unknown one, and refuses a non-HTTP mirror', async () => {
    await expect(runVerify({ projectDir: project.root, release: 'nope', out: silent })).rejects.toMatchObject(
      {
        code: 'E_NO_RELEASE',
        hint: 'known releases: 2026.11',
      },
    );
    await expect(
      runVerify({ projectDir: project.root, release: '2026.11', mirror: 'ftp://x', out: silent }),
    ).rejects.toMatchObject({ code: 'E_USAGE' });
  });

  it.each([
    ['http://m/osbake', 'builds/a.qcow2', 'http://m/osbake/builds/a.qcow2'],
    ['http://m/osbake//', 'repos/Debian12/p#1.tar.zst', 'http://m/osbake/repos/Debian12/p%231.tar.zst'],
  ])('mirrorUrl(%s, %s)', (m, p, url) => {
    expect(mirrorUrl(m, p)).toBe(url);
  });
});
