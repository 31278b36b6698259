/**
 * The release verbs as a user meets them: release, verify, manifest prune, packages, diff — on a
 * project with real store files (their real sizes and SHA-256 sums) and build records.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEntry } from '../fixtures/build-entry.js';
import { runCli } from '../integration/helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function build(artifact: string, t: number, content: string, dirty = false) {
  return buildEntry({ artifact, time: t, content, dirty, release: 'r1', extra: { package_count: 2 } });
}

describe('osbake release / verify / manifest prune / packages / diff', () => {
  let dir: string;
  const store = () => join(dir, 'store/builds');
  const git = (...a: string[]) => execFileSync('git', ['-C', dir, ...a], { encoding: 'utf8' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'osbake-e2e-release-'));
    writeFileSync(join(dir, 'osbake.yaml'), 'store: store\n');
    mkdirSync(join(dir, 'images/img'), { recursive: true });
    mkdirSync(store(), { recursive: true });
    writeFileSync(join(dir, 'images/img/image.yaml'), 'name: img\ndistro: debian\n');
    const files = { 'img-1': 'first image', 'img-2': 'second image', 'img-3': 'dirty image' };
    for (const [a, c] of Object.entries(files)) writeFileSync(join(store(), `${a}.qcow2`), c);
    writeFileSync(join(store(), 'img-1.packages.tsv'), 'bash\t5.2\tamd64\njq\t1.6\tamd64\n');
    writeFileSync(join(store(), 'img-2.packages.tsv'), 'bash\t5.2.1\tamd64\ncurl\t7.88\tamd64\n');
    writeFileSync(
      join(dir, 'images/img/manifest.json'),
      JSON.stringify({
        builds: [
          build('img-1', 100, files['img-1']),
          build('img-2', 200, files['img-2']),
          build('img-3', 300, files['img-3'], true),
        ],
        last_run_uuid: 'uuid-300',
      }),
    );
    git('init', '-q', '-b', 'main');
    git('-c', 'user.email=t@osbake.invalid', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'x');
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('records the latest clean build, then verifies it', async () => {
    const r = await runCli(['release', 'r1', '--no-patches'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/added\s+image\s+img\s+12 B\s+builds\/img-2\.qcow2/);
    const yaml = readFileSync(join(dir, 'manifest.yaml'), 'utf8');
    expect(yaml).toContain(`sha256: ${sha('second image')}`);
    expect(JSON.parse(readFileSync(join(dir, 'store/releases/r1.json'), 'utf8'))).toMatchObject({
      artifacts: [expect.objectContaining({ path: 'builds/img-2.qcow2' })],
    });
    const v = await runCli(['verify', 'r1'], dir);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^OK\s+image\s+img\s+builds\/img-2\.qcow2/m);
    const j = await runCli(['verify', 'r1', '--json'], dir);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({
      release: 'r1',
      verified: true,
      artifacts: [{ name: 'img', kind: 'image', path: 'builds/img-2.qcow2', status: 'OK' }],
    });
    const again = await runCli(['release', 'r1', '--no-patches', '--json'], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      release: 'r1',
      changed: false,
      entry: { artifacts: [expect.objectContaining({ path: 'builds/img-2.qcow2' })] },
    });
  });

  it('refuses to change a recorded release without --force', async () => {
    writeFileSync(join(store(), 'img-4.qcow2'), 'fourth image');
    const m = JSON.parse(readFileSync(join(dir, 'images/img/manifest.json'), 'utf8'));
    m.builds.push(build('img-4', 400, 'fourth image'));
    writeFileSync(join(dir, 'images/img/manifest.json'), JSON.stringify(m));
    const r = await runCli(['release', 'r1', '--no-patches'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^osbake: error: .*r1/m);
    expect(r.stderr).toMatch(/^hint: .*--force/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(dir, 'manifest.yaml'), 'utf8')).toContain('builds/img-2.qcow2');
    const f = await runCli(['release', 'r1', '--no-patches', '--force'], dir);
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(join(dir, 'manifest.yaml'), 'utf8')).toContain('builds/img-4.qcow2');
  });

  it('verify exits non-zero on a changed or missing artifact', async () => {
    const file = join(store(), 'img-4.qcow2');
    writeFileSync(file, 'FOURTH image'); // same size, other bytes
    const bad = await runCli(['verify', 'r1'], dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^MISMATCH\s+image\s+img/m);
    const badJson = await runCli(['verify', 'r1', '--json'], dir);
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.stdout)).toMatchObject({
      verified: false,
      artifacts: [{ status: 'MISMATCH' }],
    });
    rmSync(file);
    const gone = await runCli(['verify', 'r1'], dir);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toMatch(/^MISSING\s+image\s+img/m);
    writeFileSync(file, 'fourth image');
    expect((await runCli(['verify', 'r1'], dir)).code).toBe(0);
  });

  it('reports manifest.yaml errors with line and key', async () => {
    const good = readFileSync(join(dir, 'manifest.yaml'), 'utf8');
    writeFileSync(join(dir, 'manifest.yaml'), good.replace(/sha256: [0-9a-f]+/, 'sha256: nothex'));
    try {
      const r = await runCli(['verify', 'r1'], dir);
      expect(r.code).toBe(2);
      const line = good.split('\n').findIndex((l) => /sha256: [0-9a-f]+/.test(l)) + 1;
      expect(r.stderr).toContain(`manifest.yaml:${line}: releases.r1.artifacts.0.sha256:`);
    } finally {
      writeFileSync(join(dir, 'manifest.yaml'), good);
    }
    const u = await runCli(['verify', 'nope'], dir);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/nope/);
  });

  it('prints package lists and diffs two builds', async () => {
    const p = await runCli(['packages', 'img-1'], dir);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^jq\s+1\.6\s+amd64$/m);
    const d = await runCli(['diff', 'img-1', 'img-2', '--json'], dir);
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({
      a: 'img-1',
      b: 'img-2',
      images: [
        {
          image: 'img',
          added: [expect.objectContaining({ name: 'curl' })],
          removed: [expect.objectContaining({ name: 'jq' })],
          changed: [{ name: 'bash', from: '5.2', to: '5.2.1' }],
        },
      ],
    });
    const t = await runCli(['diff', 'img-1', 'img-2'], dir);
    expect(t.stdout).toMatch(/^ +~ +bash +5\.2 +→ +5\.2\.1 +amd64$/m);
    expect(t.stdout).toMatch(/1 added, 1 removed, 1 changed, 0 unchanged/);
  });

  it('manifest prune keeps only the latest clean build (dry run writes nothing)', async () => {
    const before = readFileSync(join(dir, 'images/img/manifest.json'), 'utf8');
    const dry = await runCli(['manifest', 'prune', '--dry-run', '--json'], dir);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({
      dry_run: true,
      images: [{ image: 'img', removed: expect.arrayContaining(['img-2']) }],
    });
    expect(readFileSync(join(dir, 'images/img/manifest.json'), 'utf8')).toBe(before);
    const r = await runCli(['manifest', 'prune', 'img'], dir);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(dir, 'images/img/manifest.json'), 'utf8'));
    expect(m.builds.map((b: { custom_data: { artifact: string } }) => b.custom_data.artifact)).toEqual([
      'img-4',
    ]);
  });
});
