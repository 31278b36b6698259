import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { readBuildsManifest } from '../../src/config/builds.js';

const DIST = resolve(__dirname, '../../dist/config/builds.js');

describe('manifest.json under concurrent processes', () => {
  it('20 writer processes at once lose no entry and leave no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-mp-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'manifest.json');
    const script = join(dir, 'writer.mjs');
    await writeFile(
      script,
      `import { appendBuild } from ${JSON.stringify(DIST)};
const i = Number(process.argv[2]);
await appendBuild(${JSON.stringify(file)}, {
  name: 'img', builder_type: 'qemu', build_time: i, files: [{ name: 'f' + i, size: i }],
  artifact_id: 'VM', packer_run_uuid: 'run-' + i,
  custom_data: { artifact: 'a' + i, git_branch: 'main', git_commit: 'c', git_dirty: false,
    sha256: '0'.repeat(64), size: i, package_count: 1, duration_s: 1, accelerator: 'tcg', osbake_version: 'x' },
});
`,
    );
    const codes = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<number>((res) => {
            const p = spawn(process.execPath, [script, String(i)], { stdio: 'inherit' });
            p.on('exit', (c) => res(c ?? -1));
          }),
      ),
    );
    expect(codes).toEqual(Array(20).fill(0));
    const m = await readBuildsManifest(file);
    expect(new Set(m.builds.map((b) => b.packer_run_uuid)).size).toBe(20);
    expect((await readdir(dir)).sort()).toEqual(['manifest.json', 'writer.mjs']);
  });
});
