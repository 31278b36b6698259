import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import { compareImageTrees, diffListings, type TreeEntry } from './compare-trees.js';

const f = (over: Partial<TreeEntry> = {}): TreeEntry => ({
  type: 'file',
  size: 1,
  mode: 0o644,
  uid: 0,
  gid: 0,
  sha256: 'a',
  ...over,
});

describe('diffListings', () => {
  it('names added, removed and changed paths with what changed', () => {
    const a = new Map([
      ['etc/a', f()],
      ['etc/b', f()],
      ['etc/c', f()],
      ['etc/l', f({ type: 'link', target: 'x', sha256: undefined })],
    ]);
    const b = new Map([
      ['etc/a', f()],
      ['etc/c', f({ sha256: 'b' })],
      ['etc/d', f()],
      ['etc/l', f({ type: 'link', target: 'y', sha256: undefined, mode: 0o777 })],
    ]);
    expect(diffListings(a, b)).toEqual([
      { kind: 'removed', path: 'etc/b' },
      { kind: 'changed', path: 'etc/c', detail: 'content' },
      { kind: 'added', path: 'etc/d' },
      { kind: 'changed', path: 'etc/l', detail: 'mode 644 → 777, link x → y' },
    ]);
  });
});

describe('compareImageTrees (real qcow2 disks, loop devices, ext4)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osbake-cmp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A 48 MiB GPT disk: a 1 MiB partition and a Linux root made from tree, as a qcow2. */
  const disk = (name: string, files: Record<string, string>) => {
    const tree = join(dir, `${name}-tree`);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(tree, p, '..'), { recursive: true });
      writeFileSync(join(tree, p), text);
    }
    const raw = join(dir, `${name}.raw`);
    execFileSync('truncate', ['-s', '48M', raw]);
    execFileSync('sfdisk', ['--quiet', raw], {
      input:
        'label: gpt\nlabel-id: 0F5E8C1E-1111-4222-8333-444455556666\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649, uuid=6E9C2B10-0000-4000-8000-000000000001\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6E9C2B10-0000-4000-8000-000000000002\n',
    });
    const parts = JSON.parse(execFileSync('sfdisk', ['--json', raw], { encoding: 'utf8' })).partitiontable
      .partitions;
    const root = parts[1];
    const fs = join(dir, `${name}.ext4`);
    execFileSync('truncate', ['-s', String(root.size * 512), fs]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, fs]);
    execFileSync('dd', [
      `if=${fs}`,
      `of=${raw}`,
      'bs=1M',
      `seek=${root.start * 512}`,
      'oflag=seek_bytes',
      'conv=notrunc',
      'status=none',
    ]);
    const qcow2 = join(dir, `${name}.qcow2`);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    return qcow2;
  };

  it('finds a planted difference file by file; none between a disk and itself but its blocks', async () => {
    const a = disk('a', { 'etc/hostname': 'node\n', 'etc/keep': 'same\n', 'usr/bin/tool': 'v1\n' });
    const b = disk('b', {
      'etc/hostname': 'node\n',
      'etc/keep': 'same\n',
      'usr/bin/tool': 'v2\n',
      'var/new': 'x',
    });
    const scratch = mkdtempSync(join(dir, 'scratch-'));
    const diff = await compareImageTrees(a, b, scratch, createNullLogger());
    expect(diff).toEqual([
      { kind: 'changed', path: 'usr/bin/tool', detail: 'content' },
      { kind: 'added', path: 'var' },
      { kind: 'added', path: 'var/new' },
    ]);
    const self = await compareImageTrees(
      a,
      disk('a2', { 'etc/hostname': 'node\n', 'etc/keep': 'same\n', 'usr/bin/tool': 'v1\n' }),
      scratch,
      createNullLogger(),
    );
    expect(self).toEqual([
      { kind: 'disk', path: '(root file system)', detail: 'same files, different blocks' },
    ]);
  }, 60_000);
});
