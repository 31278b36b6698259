import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEntry } from '../../test/fixtures/build-entry.js';
import type { BuildEntry } from '../config/builds.js';
import { loadReleases } from '../config/releases.js';
import { patchChoice, runRelease } from './run-release.js';

const sha = (b: string) => createHash('sha256').update(b).digest('hex');
const silent = { write: () => true };
const noProgress = { start() {}, add() {}, end() {} };

function entry(image: string, artifact: string, t: number, content: string, extra = {}): BuildEntry {
  return buildEntry({ image, artifact, time: t, content, release: '2026.11', extra });
}

/** A project with one image (two clean builds for 2026.11, the second carrying a bundle). */
async function makeProject() {
  const root = await mkdtemp(join(tmpdir(), 'osbake-release-'));
  await writeFile(join(root, 'osbake.yaml'), 'store: store\n');
  await mkdir(join(root, 'images/img'), { recursive: true });
  await mkdir(join(root, 'images/other'), { recursive: true });
  await writeFile(join(root, 'images/img/image.yaml'), 'name: img\ndistro: debian\n');
  await writeFile(join(root, 'images/other/image.yaml'), 'name: other\ndistro: debian\n');
  await mkdir(join(root, 'store/builds'), { recursive: true });
  await mkdir(join(root, 'store/repos/Debian12'), { recursive: true });
  const files: Record<string, string> = {
    'builds/img-1.qcow2': 'image one',
    'builds/img-2.qcow2': 'image two',
    'repos/Debian12/p1.tar.zst': 'bundle',
  };
  for (const [p, c] of Object.entries(files)) await writeFile(join(root, 'store', p), c);
  const bundle = { id: 'p1', path: 'repos/Debian12/p1.tar.zst', sha256: sha('bundle'), size: 6, packages: 2 };
  const manifest = {
    builds: [
      entry('img', 'img-1', 100, 'image one'),
      entry('img', 'img-2', 200, 'image two', { patch_bundle: bundle }),
    ],
    last_run_uuid: 'uuid-200',
  };
  await writeFile(join(root, 'images/img/manifest.json'), JSON.stringify(manifest));
  return root;
}

const opts = (root: string, more = {}) => ({
  projectDir: root,
  release: '2026.11',
  force: false,
  out: silent,
  progress: noProgress,
  gitCommit: 'f'.repeat(40),
  now: new Date('2026-11-25T10:00:00Z'),
  ...more,
});

describe('osbake release', () => {
  it.each([
    [undefined, { mode: 'newest' }],
    [true, { mode: 'newest' }],
    [false, { mode: 'none' }],
    ['p1', { mode: 'id', id: 'p1' }],
  ])('patchChoice(%j)', (input, choice) => {
    expect(patchChoice(input)).toEqual(choice);
  });

  it('records the release in manifest.yaml and store/releases/<R>.json, then is idempotent', async () => {
    const root = await makeProject();
    let text = '';
    await runRelease(
      opts(root, {
        out: {
          write: (s: string) => {
            text += s;
            return true;
          },
        },
      }),
    );
    const releases = await loadReleases({ root });
    const r = releases.releases['2026.11'];
    expect(r?.date).toBe('2026-11-25');
    expect(r?.git_commit).toBe('f'.repeat(40));
    expect(r?.artifacts.map((a) => [a.kind, a.name, a.path])).toEqual([
      ['image', 'img', 'builds/img-2.qcow2'],
      ['patch-bundle', 'p1', 'repos/Debian12/p1.tar.zst'],
    ]);
    const json = JSON.parse(await readFile(join(root, 'store/releases/2026.11.json'), 'utf8'));
    expect(json).toEqual({ release: '2026.11', ...r });
    expect(text).toContain('note: other: no builds yet (no manifest.json); skipped');
    expect(text).toMatch(/^added +image +img +9 B +builds\/img-2\.qcow2$/m);

    const before = await readFile(join(root, 'manifest.yaml'), 'utf8');
    const again = await runRelease(opts(root, { now: new Date('2027-01-01') }));
    expect(again.changed).toBe(false);
    expect(await readFile(join(root, 'manifest.yaml'), 'utf8')).toBe(before);
    expect(await readdir(root)).not.toContain('manifest.yaml.lock');
  });

  it('refuses to record an artifact whose store file differs, and writes nothing', async () => {
    const root = await makeProject();
    await writeFile(join(root, 'store/builds/img-2.qcow2'), 'image TWO');
    await expect(runRelease(opts(root))).rejects.toMatchObject({
      code: 'E_STORE',
      message: expect.stringMatching(/builds\/img-2\.qcow2: MISMATCH/),
    });
    await writeFile(join(root, 'store/builds/img-2.qcow2'), 'short');
    await expect(runRelease(opts(root))).rejects.toThrow(/builds\/img-2\.qcow2: SIZE/);
    await writeFile(join(root, 'store/builds/img-2.qcow2'), 'image two');
    await writeFile(join(root, 'store/repos/Debian12/p1.tar.zst'), '');
    await expect(runRelease(opts(root, { patches: 'p1' }))).rejects.toThrow(/p1\.tar\.zst: SIZE/);
    expect(await readdir(root)).not.toContain('manifest.yaml');
    expect(await readdir(join(root, 'store'))).not.toContain('releases');
  });

  it('needs --force to drop the recorded bundle', async () => {
    const root = await makeProject();
    await runRelease(opts(root));
    await expect(runRelease(opts(root, { patches: false }))).rejects.toMatchObject({
      code: 'E_RELEASE_CHANGED',
    });
    const plan = await runRelease(opts(root, { patches: false, force: true }));
    expect(plan.changes.map((c) => c.status)).toEqual(['unchanged', 'removed']);
    const json = JSON.parse(await readFile(join(root, 'store/releases/2026.11.json'), 'utf8'));
    expect(json.artifacts).toHaveLength(1);
  });

  it('refuses an invalid release name', async () => {
    const root = await makeProject();
    await expect(runRelease(opts(root, { release: '../x' }))).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});
