import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEntry } from '../../test/fixtures/build-entry.js';
import type { BuildEntry } from '../config/builds.js';
import { type ReleaseArtifact, writeRelease } from '../config/releases.js';
import { resolveBuild } from './packages.js';
import type { ImageBuilds } from './plan.js';
import { runDiff, runPackages } from './run-packages.js';

function entry(artifact: string, t: number): BuildEntry {
  return buildEntry({ image: 'x', artifact, time: t, files: null });
}

const images: ImageBuilds[] = [
  {
    image: 'base',
    file: 'images/base/manifest.json',
    builds: [entry('base-r1-main-2', 2), entry('base-r1-main-1', 1)],
  },
  { image: 'base-gpu', file: 'images/base-gpu/manifest.json', builds: [] },
];

describe('resolveBuild', () => {
  it.each([
    ['base', false, { image: 'base', artifact: 'base-r1-main-2' }],
    ['base-r1-main-1', false, { image: 'base', artifact: 'base-r1-main-1' }],
    ['base-gpu-r1-main-9', true, { image: 'base-gpu', artifact: 'base-gpu-r1-main-9' }],
    ['base-r0-main-0', true, { image: 'base', artifact: 'base-r0-main-0' }],
  ])('%s (in store: %s)', (name, inStore, expected) => {
    expect(resolveBuild(name, images, inStore)).toEqual(expected);
  });

  it.each([
    ['base-gpu', /image base-gpu has no builds yet/],
    ['nothing', /"nothing" is not an image or a build/],
  ])('refuses %s', (name, message) => {
    expect(() => resolveBuild(name, images, false)).toThrow(message);
  });
});

async function project() {
  const root = await mkdtemp(join(tmpdir(), 'osbake-pkgs-'));
  await writeFile(join(root, 'osbake.yaml'), '');
  await mkdir(join(root, 'images/base'), { recursive: true });
  await writeFile(join(root, 'images/base/image.yaml'), 'name: base\ndistro: debian\n');
  await writeFile(
    join(root, 'images/base/manifest.json'),
    JSON.stringify({
      builds: [entry('base-r1-main-1', 1), entry('base-r2-main-2', 2)],
      last_run_uuid: 'u-2',
    }),
  );
  await mkdir(join(root, 'store/builds'), { recursive: true });
  await writeFile(
    join(root, 'store/builds/base-r1-main-1.packages.tsv'),
    'bash\t5.2.15-2+b2\tamd64\nopenssl\t3.0.11-1~deb12u1\tamd64\n',
  );
  await writeFile(
    join(root, 'store/builds/base-r2-main-2.packages.tsv'),
    'bash\t5.2.15-2+b2\tamd64\nopenssl\t3.0.13-1~deb12u1\tamd64\njq\t1.6-2.1\tamd64\n',
  );
  const art = (build: string): ReleaseArtifact => ({
    name: 'base',
    kind: 'image',
    path: `builds/${build}.qcow2`,
    sha256: 'b'.repeat(64),
    size: 1,
    build,
  });
  const rel = (build: string) => ({
    date: '2026-11-25',
    git_commit: 'c'.repeat(40),
    artifacts: [art(build)],
  });
  await writeRelease(join(root, 'manifest.yaml'), 'r1', rel('base-r1-main-1'), undefined);
  await writeRelease(join(root, 'manifest.yaml'), 'r2', rel('base-r2-main-2'), undefined);
  return root;
}

function capture() {
  const o = {
    text: '',
    write: (s: string) => {
      o.text += s;
      return true;
    },
  };
  return o;
}

describe('osbake packages / diff', () => {
  it('prints the latest build of an image as aligned columns, or JSON', async () => {
    const root = await project();
    const out = capture();
    await runPackages({ projectDir: root, build: 'base', json: false, out });
    expect(out.text).toBe(
      [
        '# base-r2-main-2: 3 packages',
        'NAME     VERSION           ARCH',
        'bash     5.2.15-2+b2       amd64',
        'openssl  3.0.13-1~deb12u1  amd64',
        'jq       1.6-2.1           amd64',
        '',
      ].join('\n'),
    );
    const json = capture();
    await runPackages({ projectDir: root, build: 'base-r1-main-1', json: true, out: json });
    expect(JSON.parse(json.text)).toHaveLength(2);
  });

  it('says which file is missing', async () => {
    const root = await project();
    await writeFile(
      join(root, 'images/base/manifest.json'),
      JSON.stringify({ builds: [entry('base-r3-main-3', 3)], last_run_uuid: 'u-3' }),
    );
    await expect(
      runPackages({ projectDir: root, build: 'base', json: false, out: capture() }),
    ).rejects.toMatchObject({
      code: 'E_NO_PACKAGES',
    });
  });

  it.each([
    ['r1', 'r2'],
    ['base-r1-main-1', 'base-r2-main-2'],
    ['r1', 'base'],
  ])('diffs %s and %s', async (a, b) => {
    const root = await project();
    const out = capture();
    await runDiff({ projectDir: root, a, b, json: false, out });
    expect(out.text).toContain('base: base-r1-main-1 → base-r2-main-2');
    expect(out.text).toContain('1 added, 0 removed, 1 changed, 1 unchanged');
    const json = capture();
    await runDiff({ projectDir: root, a, b, json: true, out: json });
    expect(JSON.parse(json.text).images[0]).toMatchObject({
      image: 'base',
      added: [{ name: 'jq', version: '1.6-2.1', arch: 'amd64' }],
      changed: [{ name: 'openssl', from: '3.0.11-1~deb12u1', to: '3.0.13-1~deb12u1' }],
    });
  });
});
