import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEntry } from '../../test/fixtures/build-entry.js';
import { type BuildEntry, type BuildsManifest, readBuildsManifest } from '../config/builds.js';
import { planPrune } from './prune.js';
import { runPrune } from './run-prune.js';

function entry(artifact: string, t: number, dirty = false): BuildEntry {
  return buildEntry({ artifact, time: t, dirty });
}

const m = (...builds: BuildEntry[]): BuildsManifest => ({
  builds,
  last_run_uuid: builds.at(-1)?.packer_run_uuid ?? '',
});

describe('planPrune', () => {
  it.each<[string, BuildsManifest, string | undefined, string[], string | undefined]>([
    ['no builds', m(), undefined, [], 'no builds'],
    ['one clean build', m(entry('c1', 1)), 'c1', [], undefined],
    [
      'latest clean build wins over newer dirty ones',
      m(entry('c1', 1), entry('c2', 3), entry('d1', 4, true), entry('c0', 2)),
      'c2',
      ['c1', 'd1', 'c0'],
      undefined,
    ],
    [
      'no clean build: the latest dirty one stays',
      m(entry('d1', 1, true), entry('d2', 2, true)),
      'd2',
      ['d1'],
      'no clean build: keeping the latest build d2',
    ],
  ])('%s', (_n, manifest, keep, remove, note) => {
    const plan = planPrune('img', manifest);
    expect(plan.keep?.custom_data.artifact).toBe(keep);
    expect(plan.remove.map((b) => b.custom_data.artifact)).toEqual(remove);
    expect(plan.note).toBe(note);
    if (plan.keep) {
      expect(plan.result.builds).toEqual([plan.keep]);
      expect(plan.result.last_run_uuid).toBe(plan.keep.packer_run_uuid);
    }
  });
});

describe('osbake manifest prune', () => {
  async function project() {
    const root = await mkdtemp(join(tmpdir(), 'osbake-prune-'));
    await writeFile(join(root, 'osbake.yaml'), '');
    for (const i of ['a', 'b', 'c']) {
      await mkdir(join(root, 'images', i), { recursive: true });
      await writeFile(join(root, 'images', i, 'image.yaml'), `name: ${i}\ndistro: debian\n`);
    }
    await writeFile(
      join(root, 'images/a/manifest.json'),
      JSON.stringify(m(entry('a1', 1), entry('a2', 2, true))),
    );
    await writeFile(join(root, 'images/b/manifest.json'), JSON.stringify(m(entry('b1', 1, true))));
    return root;
  }

  it('--dry-run prints what it would remove and writes nothing', async () => {
    const root = await project();
    const before = await readFile(join(root, 'images/a/manifest.json'), 'utf8');
    let text = '';
    await runPrune({
      projectDir: root,
      dryRun: true,
      out: {
        write: (s: string) => {
          text += s;
          return true;
        },
      },
    });
    expect(text).toContain('a: would remove a2 (1970-01-01 00:00, dirty)');
    expect(text).toContain('b: no clean build: keeping the latest build b1');
    expect(text).toContain('c: no manifest.json (no builds yet)');
    expect(text).toContain('dry run: 1 build(s) would be removed; nothing written');
    expect(await readFile(join(root, 'images/a/manifest.json'), 'utf8')).toBe(before);
  });

  it('keeps the latest clean build, fixes last_run_uuid, leaves no lock or temp file', async () => {
    const root = await project();
    let text = '';
    await runPrune({
      projectDir: root,
      image: 'a',
      dryRun: false,
      out: {
        write: (s: string) => {
          text += s;
          return true;
        },
      },
    });
    const a = await readBuildsManifest(join(root, 'images/a/manifest.json'));
    expect(a.builds.map((b) => b.custom_data.artifact)).toEqual(['a1']);
    expect(a.last_run_uuid).toBe(a.builds[0]?.packer_run_uuid);
    expect(text).toContain('a: remove a2');
    expect(text).toContain('removed 1 build(s) from images/a/manifest.json');
    expect(await readdir(join(root, 'images/a'))).toEqual(['image.yaml', 'manifest.json']);
  });

  it('names the known images for an unknown one', async () => {
    const root = await project();
    await expect(runPrune({ projectDir: root, image: 'zz', dryRun: true })).rejects.toMatchObject({
      code: 'E_NO_IMAGE',
    });
  });
});
