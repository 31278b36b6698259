import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProject } from '../config/project.js';
import { createNullLogger } from '../log/logger.js';
import { prepareWorktree, type RebuildResult, type RebuildTarget, rebuildText } from './run-rebuild.js';

const base: RebuildResult = {
  build: 'debian12-base-r1-main-1a2b3c4d',
  image: 'debian12-base',
  commit: 'c'.repeat(40),
  release: 'r1',
  recorded_sha256: 'a'.repeat(64),
  rebuilt_sha256: 'a'.repeat(64),
  identical: true,
  level: 'bytes',
  expected_level: 'bytes',
  tool_changes: [],
  differences: [],
  checked: '2026-12-07T00:00:00.000Z',
};

describe('rebuildText', () => {
  it('bit-identical: one line and the shared sha256', () => {
    expect(rebuildText(base, 'chroot')).toBe(
      `bit-identical: ${base.build}\n  sha256: ${'a'.repeat(64)} (recorded and rebuilt)\n`,
    );
  });

  it('a difference: the level reached, the tool versions that differ first, then each path', () => {
    const text = rebuildText(
      {
        ...base,
        identical: false,
        level: 'files',
        rebuilt_sha256: 'b'.repeat(64),
        tool_changes: ['mke2fs: mke2fs 1.47.0 → mke2fs 1.47.1'],
        differences: [{ kind: 'changed', path: 'etc/planted', detail: 'sha256' }],
      },
      'chroot',
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe(`DIFFERS: ${base.build} (level reached: files; expected for chroot: bytes)`);
    expect(lines[1]).toBe('  tool version differs: mke2fs: mke2fs 1.47.0 → mke2fs 1.47.1');
    expect(text).toContain('  changed  etc/planted  (sha256)');
  });

  it('lists at most 50 paths and says how many more', () => {
    const differences = Array.from({ length: 53 }, (_, i) => ({ kind: 'added' as const, path: `f${i}` }));
    const text = rebuildText({ ...base, identical: false, level: 'none', differences }, 'chroot');
    expect(text.match(/^ {2}added /gm)).toHaveLength(50);
    expect(text).toContain('… 3 more (--json lists all)');
  });
});

describe('prepareWorktree (real git)', () => {
  it("leaves the build's commit clean with the project's caches linked in (default layout: .osbake/ and store/ inside)", async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-rebuild-'));
    try {
      const git = (...args: string[]) =>
        execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      git('init', '-q', '-b', 'main');
      await writeFile(join(root, 'osbake.yaml'), 'store: store\n');
      // As the repository's own .gitignore has them: patterns with a slash match directories only.
      await writeFile(join(root, '.gitignore'), '.osbake/\nstore/\n');
      git('add', '-A');
      git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '-m', 'project');
      const commit = git('rev-parse', 'HEAD').trim();
      await mkdir(join(root, '.osbake/cache/vanilla'), { recursive: true });
      await writeFile(join(root, '.osbake/cache/vanilla/disk.qcow2'), 'vanilla');
      await mkdir(join(root, 'store/repos'), { recursive: true });
      const project = await loadProject(root);
      const tree = join(root, '.osbake/work/rebuild-x/tree');
      const target = { cd: { git_commit: commit }, storeRel: 'store' } as unknown as RebuildTarget;
      await prepareWorktree(project, target, tree, createNullLogger());
      // Nothing the build would see as a change (it would name its artifact -dirty).
      expect(execFileSync('git', ['-C', tree, 'status', '--porcelain'], { encoding: 'utf8' })).toBe('');
      expect(await readFile(join(tree, '.osbake/cache/vanilla/disk.qcow2'), 'utf8')).toBe('vanilla');
      expect(existsSync(join(tree, 'store/repos'))).toBe(true);
      git('worktree', 'remove', '--force', tree);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
