import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadProject } from '../config/project.js';
import { buildFiles } from './publish.js';

const root = await mkdtemp(join(tmpdir(), 'osbake-publish-'));
afterAll(() => rm(root, { recursive: true, force: true }));

/** A manifest.json entry of one build, its store files made. */
async function recordBuild(
  image: string,
  artifact: string,
  file: string,
  extra: Record<string, unknown> = {},
) {
  await mkdir(join(root, 'images', image), { recursive: true });
  await writeFile(join(root, 'images', image, 'image.yaml'), `name: ${image}\n`);
  const entry = {
    name: image,
    builder_type: 'osbake-installer',
    build_time: 1,
    files: [{ name: file, size: 1 }],
    artifact_id: file,
    packer_run_uuid: 'u',
    custom_data: {
      artifact,
      git_branch: 'main',
      git_commit: 'c'.repeat(40),
      git_dirty: false,
      sha256: 'a'.repeat(64),
      size: 1,
      package_count: 0,
      duration_s: 1,
      accelerator: 'none',
      osbake_version: '0.1.0',
      ...extra,
    },
  };
  await writeFile(
    join(root, 'images', image, 'manifest.json'),
    JSON.stringify({ builds: [entry], last_run_uuid: 'u' }),
  );
  await mkdir(join(root, 'store/builds'), { recursive: true });
  for (const f of [file, `${file}.sha256`, `${file}.bmap`, `${file}.bmap-signature.asc`]) {
    await writeFile(join(root, 'store/builds', f), 'x');
  }
}

describe('buildFiles (what publish uploads for one build)', () => {
  it("an installer's stick: its .raw (as its record names it) with the sidecars, the image last", async () => {
    await writeFile(join(root, 'osbake.yaml'), 'store: store\n');
    await recordBuild(
      'usb-installer',
      'usb-installer-r1-main-1a2b3c4d',
      'usb-installer-r1-main-1a2b3c4d.raw',
      {
        artifact_kind: 'installer',
      },
    );
    const project = await loadProject(root);
    const { artifact, files } = await buildFiles(project, 'usb-installer-r1-main-1a2b3c4d');
    expect(artifact).toBe('usb-installer-r1-main-1a2b3c4d');
    expect(files).toEqual([
      'builds/usb-installer-r1-main-1a2b3c4d.raw.sha256',
      'builds/usb-installer-r1-main-1a2b3c4d.raw.bmap',
      'builds/usb-installer-r1-main-1a2b3c4d.raw.bmap-signature.asc',
      'builds/usb-installer-r1-main-1a2b3c4d.raw',
    ]);
  });
});
