import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  clampShadowDays,
  isVolatile,
  normalizeTree,
  rawRangeOpts,
  usedInodes,
  VOLATILE,
} from './reproducible.js';

describe('clampShadowDays', () => {
  it('clamps "last changed" days after the epoch to its day; leaves the rest', () => {
    const sde = 20_000 * 86_400 + 5;
    const text = 'root:*:20500:0:99999:7:::\n_apt:*:19000:0:99999:7:::\nbroken line\nx:!:notanumber::\n';
    expect(clampShadowDays(text, sde)).toBe(
      'root:*:20000:0:99999:7:::\n_apt:*:19000:0:99999:7:::\nbroken line\nx:!:notanumber::\n',
    );
  });
});

describe('usedInodes', () => {
  it('is every inode not listed free, without the reserved ones', () => {
    const dump =
      'Inode count:              20\nGroup 0:\n  Free inodes: 14-16, 18\nGroup 1:\n  Free inodes: 20\n';
    expect(usedInodes(dump)).toEqual([2, 11, 12, 13, 17, 19]);
  });
});

describe('normalizeTree (on a real directory)', () => {
  const root = mkdtempSync(join(tmpdir(), 'osbake-norm-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('removes, empties and truncates the documented volatile files; keeps everything else', async () => {
    for (const d of [
      'var/cache/ldconfig',
      'var/log/apt',
      'tmp/x',
      'etc',
      'usr/lib/python3/dist-packages/m/__pycache__',
      'root/.ansible/tmp',
    ])
      mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'var/cache/ldconfig/aux-cache'), 'cache');
    writeFileSync(join(root, 'var/log/apt/history.log'), 'Start-Date: 2026-12-07');
    symlinkSync('/etc/passwd', join(root, 'var/log/link'));
    writeFileSync(join(root, 'tmp/x/y'), 'y');
    writeFileSync(join(root, 'etc/machine-id'), '0123456789abcdef\n');
    writeFileSync(join(root, 'etc/shadow'), 'root:*:99999:0:99999:7:::\n');
    writeFileSync(join(root, 'etc/keep'), 'keep');
    writeFileSync(join(root, 'usr/lib/python3/dist-packages/m/__pycache__/a.pyc'), 'pyc');
    writeFileSync(join(root, 'usr/lib/python3/dist-packages/m/a.py'), 'py');
    await normalizeTree(root, 86_400 * 20_000);
    const gone = (p: string) => expect(() => statSync(join(root, p)), p).toThrow();
    gone('var/cache/ldconfig/aux-cache');
    gone('tmp/x');
    gone('root/.ansible');
    gone('usr/lib/python3/dist-packages/m/__pycache__');
    expect(statSync(join(root, 'tmp')).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 'var/log/apt/history.log'), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'etc/shadow'), 'utf8')).toBe('root:*:20000:0:99999:7:::\n');
    expect(readFileSync(join(root, 'etc/keep'), 'utf8')).toBe('keep');
    expect(readFileSync(join(root, 'usr/lib/python3/dist-packages/m/a.py'), 'utf8')).toBe('py');
    // A symlink under var/log is not followed (its target is not truncated).
    expect(readFileSync('/etc/passwd', 'utf8').length).toBeGreaterThan(0);
    expect(VOLATILE.remove).toContain('var/cache/ldconfig/aux-cache');
  });

  it('mkfs.ext4 -d of the same tree twice, with the debugfs time fix, gives the same bytes', () => {
    // The pieces rebuildRootFromTree runs, on a small tree (real mke2fs, dumpe2fs, debugfs).
    const u = '11111111-2222-3333-4444-555555555555';
    const env = { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000', LC_ALL: 'C' };
    const make = (img: string) => {
      // As the build does before mkfs: every time in the tree clamped to the epoch.
      execFileSync('sh', ['-c', `find "$1" -exec touch -h -d @1700000000 {} +`, 'sh', root]);
      writeFileSync(img, '');
      execFileSync('truncate', ['-s', '32M', img]);
      execFileSync(
        'mkfs.ext4',
        [
          '-q',
          '-F',
          '-d',
          root,
          '-U',
          u,
          '-E',
          `hash_seed=${u}`,
          '-O',
          '^orphan_file,^metadata_csum_seed',
          '-b',
          '4096',
          img,
        ],
        { env },
      );
      const used = usedInodes(
        execFileSync('dumpe2fs', [img], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      );
      const cmd = `${img}.cmd`;
      writeFileSync(
        cmd,
        `${used.flatMap((i) => [`sif <${i}> ctime @1700000000`, `sif <${i}> atime @1700000000`]).join('\n')}\n`,
      );
      execFileSync('debugfs', ['-w', '-f', cmd, img], { env, stdio: 'ignore' });
    };
    const a = join(root, '..', `${root.split('/').pop()}-a.img`);
    const b = join(root, '..', `${root.split('/').pop()}-b.img`);
    try {
      make(a);
      execFileSync('touch', [join(root, 'etc/keep')]); // a new ctime and atime in the tree
      make(b);
      expect(execFileSync('cmp', [a, b]).toString()).toBe('');
    } finally {
      rmSync(a, { force: true });
      rmSync(b, { force: true });
      rmSync(`${a}.cmd`, { force: true });
      rmSync(`${b}.cmd`, { force: true });
    }
  });
});

describe('isVolatile', () => {
  it('matches the documented list and nothing else', () => {
    for (const p of [
      'var/cache/ldconfig/aux-cache',
      'root/.ansible/tmp/x',
      'tmp/a',
      'var/log/apt/history.log',
      'usr/lib/python3/x/__pycache__/a.pyc',
      'etc/machine-id',
      'etc/shadow',
    ])
      expect(isVolatile(p), p).toBe(true);
    for (const p of ['tmp', 'var/log', 'etc/passwd', 'usr/bin/ls', 'root/.bashrc', 'var/lib/dpkg/status'])
      expect(isVolatile(p), p).toBe(false);
  });
});

const hasQemuImg = (() => {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasQemuImg)('rawRangeOpts (with the real qemu-img, as replacePartition runs it)', () => {
  it('writes a file into a range of a raw disk whose path holds a comma; the bytes around stay', () => {
    const dir = mkdtempSync(join(tmpdir(), 'osbake-range,dir-'));
    try {
      const disk = join(dir, 'disk,1.raw');
      const part = join(dir, 'part.img');
      writeFileSync(disk, Buffer.alloc(64 * 1024, 0xaa));
      const data = Buffer.alloc(16 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      data.fill(0, 4096, 8192); // a zero block inside: written as zeros, not skipped
      writeFileSync(part, data);
      // The range is zeroed first (replacePartition punches it), as --target-is-zero promises.
      const before = readFileSync(disk);
      before.fill(0, 8192, 8192 + data.length);
      writeFileSync(disk, before);
      execFileSync('qemu-img', [
        ...['convert', '-n', '--target-is-zero', '-f', 'raw', part],
        ...['--target-image-opts', rawRangeOpts(disk, 8192, data.length)],
      ]);
      const after = readFileSync(disk);
      expect(after.length).toBe(64 * 1024);
      expect(after.subarray(8192, 8192 + data.length).equals(data)).toBe(true);
      expect(after.subarray(0, 8192).every((b) => b === 0xaa)).toBe(true);
      expect(after.subarray(8192 + data.length).every((b) => b === 0xaa)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
