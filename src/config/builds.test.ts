import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { appendBuild, type BuildEntry, buildFileOf, readBuildsManifest, reproducibleOf } from './builds.js';

function entry(i: number): BuildEntry {
  return {
    name: 'debian12-base',
    builder_type: 'qemu',
    build_time: 1_700_000_000 + i,
    files: [{ name: `img-${i}.qcow2`, size: i }],
    artifact_id: 'VM',
    packer_run_uuid: `uuid-${i}`,
    custom_data: {
      release: 'r1',
      artifact: `img-${i}`,
      git_branch: 'main',
      git_commit: 'a'.repeat(40),
      git_dirty: false,
      sha256: 'b'.repeat(64),
      size: i,
      package_count: 10,
      duration_s: 1,
      accelerator: 'tcg',
      osbake_version: '0.1.0',
    },
  };
}

describe('manifest.json', () => {
  it('starts empty when the file does not exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-m-'));
    expect(await readBuildsManifest(join(dir, 'manifest.json'))).toEqual({ builds: [], last_run_uuid: '' });
  });

  it('appends in Packer manifest shape', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-m-'));
    const file = join(dir, 'manifest.json');
    await appendBuild(file, entry(1));
    await appendBuild(file, entry(2));
    const json = JSON.parse(await readFile(file, 'utf8'));
    expect(Object.keys(json).sort()).toEqual(['builds', 'last_run_uuid']);
    expect(json.builds).toHaveLength(2);
    expect(json.last_run_uuid).toBe('uuid-2');
    expect(Object.keys(json.builds[0]).sort()).toEqual(
      ['artifact_id', 'build_time', 'builder_type', 'custom_data', 'files', 'name', 'packer_run_uuid'].sort(),
    );
  });

  it('loses nothing with 20 concurrent writers and leaves no temporary files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-m-'));
    const file = join(dir, 'manifest.json');
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendBuild(file, entry(i))));
    const m = await readBuildsManifest(file);
    expect(m.builds).toHaveLength(20);
    expect(new Set(m.builds.map((b) => b.packer_run_uuid)).size).toBe(20);
    expect(await readdir(dir)).toEqual(['manifest.json']);
  });

  it('reports a corrupt manifest as a config error naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-m-'));
    const file = join(dir, 'manifest.json');
    await writeFile(file, '{"builds": [');
    await expect(readBuildsManifest(file)).rejects.toThrow(ConfigError);
    await writeFile(file, '{"builds": [{"name": 1}], "last_run_uuid": "x"}');
    await expect(readBuildsManifest(file)).rejects.toThrow(/builds\.0\.name/);
  });
});

describe('manifest.json artifact names', () => {
  it.each(['../../escape', '/etc/passwd', 'a/b', '.hidden', 'x..y', ''])(
    'refuses a build whose artifact is %j (files are read as store/builds/<artifact>.*)',
    async (artifact) => {
      const dir = await mkdtemp(join(tmpdir(), 'osbake-m-'));
      const file = join(dir, 'manifest.json');
      const e = entry(1);
      e.custom_data.artifact = artifact;
      await writeFile(file, JSON.stringify({ builds: [e], last_run_uuid: 'uuid-1' }));
      await expect(readBuildsManifest(file)).rejects.toThrow(ConfigError);
      await expect(readBuildsManifest(file)).rejects.toThrow(/builds\.0\.custom_data\.artifact/);
    },
  );
});

describe('reproducibleOf', () => {
  it('reads osbake rebuild\'s verdict; anything malformed is "never rebuilt"', () => {
    expect(
      reproducibleOf({ identical: true, checked: '2026-12-07T02:36:01Z', level: 'bytes', differences: 0 }),
    ).toEqual({
      identical: true,
      checked: '2026-12-07T02:36:01Z',
      level: 'bytes',
    });
    expect(reproducibleOf(undefined)).toBeNull();
    expect(reproducibleOf({ identical: 'yes', checked: 'x' })).toBeNull();
    expect(reproducibleOf('bit-identical')).toBeNull();
  });
});

describe('buildFileOf', () => {
  it("names the file the record names (a stick's .raw), else <artifact>.qcow2", () => {
    const custom_data = { artifact: 'usb-r1-main-1a2b3c4d' } as BuildEntry['custom_data'];
    expect(buildFileOf({ files: [{ name: 'usb-r1-main-1a2b3c4d.raw', size: 1 }], custom_data })).toBe(
      'usb-r1-main-1a2b3c4d.raw',
    );
    expect(buildFileOf({ files: null, custom_data })).toBe('usb-r1-main-1a2b3c4d.qcow2');
    expect(buildFileOf({ files: [], custom_data })).toBe('usb-r1-main-1a2b3c4d.qcow2');
  });
});
