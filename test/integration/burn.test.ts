/**
 * osbake burn on real loop devices (losetup -f, always detached): writes, verification, every
 * refusal on its own, the source kinds (raw, .zst, qcow2, a release's installer), and bmap
 * compatibility with Debian's bmaptool.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../../src/log/logger.js';
import { createBmap, readBmap } from '../../src/media/bmap.js';
import { formatBmap } from '../../src/media/bmap-format.js';
import { runBurn } from '../../src/media/run-burn.js';
import { runCli, TEST_LOG_DIR } from './helpers.js';

const MiB = 1024 * 1024;
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

let dir: string;
const attached: string[] = [];
const mounted: string[] = [];

/** A loop device over a new file of `mib` MiB filled with random bytes (old data on the "stick"). */
function loopDevice(name: string, mib: number, opts: { readOnly?: boolean } = {}): string {
  const back = join(dir, `${name}.back`);
  execFileSync('dd', ['if=/dev/urandom', `of=${back}`, 'bs=1M', `count=${mib}`, 'status=none']);
  const dev = sh('losetup', '-f', '--show', ...(opts.readOnly ? ['-r'] : []), back);
  attached.push(dev);
  return dev;
}

/** A sparse raw image: `size` bytes, random data at the given (offset, length) places. */
function sparseImage(name: string, size: number, data: [number, number][]): string {
  const file = join(dir, name);
  writeFileSync(file, '');
  execFileSync('truncate', ['-s', String(size), file]);
  const fd = openSync(file, 'r+');
  for (const [offset, length] of data) writeSync(fd, randomBytes(length), 0, length, offset);
  closeSync(fd);
  return file;
}

/** SHA-256 of the first `length` bytes of a file or device. */
function sha(path: string, length: number, offset = 0): string {
  const fd = openSync(path, 'r');
  const h = createHash('sha256');
  const buf = Buffer.alloc(4 * MiB);
  for (let done = 0; done < length; ) {
    const n = execRead(fd, buf, Math.min(buf.length, length - done), offset + done);
    h.update(buf.subarray(0, n));
    done += n;
  }
  closeSync(fd);
  return h.digest('hex');
}
function execRead(fd: number, buf: Buffer, n: number, pos: number): number {
  const got = readSync(fd, buf, 0, n, pos);
  if (got === 0) throw new Error('unexpected end of file');
  return got;
}

const IMAGE_SIZE = 64 * MiB;
const IMAGE_DATA: [number, number][] = [
  [0, 1 * MiB],
  [5 * MiB + 4096, 3 * MiB],
  [40 * MiB, 8192],
  [IMAGE_SIZE - 1000, 1000],
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'osbake-burn-'));
});

afterEach(() => {
  while (mounted.length > 0) {
    const m = mounted.pop() as string;
    execFileSync('umount', [m]);
  }
  while (attached.length > 0) {
    const d = attached.pop() as string;
    try {
      execFileSync('partx', ['-d', d], { stdio: 'ignore' });
    } catch {
      // no partitions
    }
    execFileSync('losetup', ['-d', d]);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('osbake burn writes', () => {
  it('a raw image without bmap: makes one, writes, zeroes the holes by offload, verifies', async () => {
    const img = sparseImage('plain.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('plain', 80);
    expect(sha(dev, IMAGE_SIZE)).not.toBe(sha(img, IMAGE_SIZE));
    const tail = sha(dev, 16 * MiB, IMAGE_SIZE);
    const r = await runCli(['burn', img, dev, '--force', '--yes'], dir);
    expect(r.stderr).toMatch(/no bmap beside plain\.raw: making one/);
    expect(r.code).toBe(0);
    // The bmap it made is kept beside the image (as bmaptool users keep theirs): not made twice.
    expect(r.stderr).toContain(`kept as ${img}.bmap`);
    expect(readFileSync(`${img}.bmap`, 'utf8')).toMatch(/<bmap version="2\.0">/);
    expect(r.stdout).toMatch(/wrote 4\.0 MiB to \/dev\/loop\d+ in [\d.]+ s .*holes zeroed by the device/);
    expect(r.stdout).toMatch(/verified 4 range\(s\) read back/);
    // The run is logged to a file the output names: the commands, the phases and their times.
    const logFile = /\(log: (\S+\.log)\)/.exec(r.stderr)?.[1];
    expect(logFile?.startsWith(TEST_LOG_DIR)).toBe(true);
    const logText = readFileSync(logFile as string, 'utf8');
    expect(logText).toMatch(/"msg":"run fallocate"/);
    expect(logText).toMatch(/"msg":"written and synced"/);
    expect(logText).toMatch(/"ranges":4,"ms":\d+,"msg":"verified"/);
    // Byte for byte, including the holes that held random data before; beyond the image: untouched.
    expect(sha(dev, IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
    expect(sha(dev, 16 * MiB, IMAGE_SIZE)).toBe(tail);
  });

  it('--holes keep writes only the mapped ranges, as bmaptool does', async () => {
    const img = sparseImage('keep.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('keep', 64);
    const oldHole = sha(dev, 4 * MiB, 20 * MiB);
    const r = await runCli(['burn', img, dev, '--force', '--yes', '--holes', 'keep'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/holes left as they were/);
    for (const [offset, length] of IMAGE_DATA)
      expect(sha(dev, length, offset)).toBe(sha(img, length, offset));
    expect(sha(dev, 4 * MiB, 20 * MiB)).toBe(oldHole);
  });

  it('a .zst image streamed through zstd, with a bmap made by bmaptool beside it', async () => {
    const img = sparseImage('stream.raw', IMAGE_SIZE, IMAGE_DATA);
    execFileSync('bmaptool', ['create', '-o', `${img}.bmap`, img], { stdio: 'ignore' });
    execFileSync('zstd', ['-q', '-1', img, '-o', `${img}.zst`]);
    const dev = loopDevice('stream', 64);
    const r = await runCli(['burn', `${img}.zst`, dev, '--force', '--yes'], dir);
    expect(r.stderr).not.toMatch(/making one/);
    expect(r.stdout).toMatch(/verified 4 range/);
    expect(r.code).toBe(0);
    expect(sha(dev, IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
  });

  it('a qcow2 (converted to a temporary raw) and the installer of a release in a project', async () => {
    const project = join(dir, 'project');
    await mkdir(join(project, 'store/builds'), { recursive: true });
    writeFileSync(join(project, 'osbake.yaml'), 'store: store\n');
    const raw = sparseImage(
      'project/store/builds/usb-installer-2026.11-main-1a2b3c4d.raw',
      IMAGE_SIZE,
      IMAGE_DATA,
    );
    execFileSync('bmaptool', ['create', '-o', `${raw}.bmap`, raw], { stdio: 'ignore' });
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, join(dir, 'disk.qcow2')]);
    const size = Number(sh('stat', '-c', '%s', raw));
    writeFileSync(
      join(project, 'manifest.yaml'),
      [
        'releases:',
        '  "2026.11":',
        '    date: "2026-11-26"',
        `    git_commit: ${'a'.repeat(40)}`,
        '    artifacts:',
        '      - name: usb-installer',
        '        kind: installer',
        '        path: builds/usb-installer-2026.11-main-1a2b3c4d.raw',
        `        sha256: ${sha(raw, size)}`,
        `        size: ${size}`,
        '',
      ].join('\n'),
    );
    const dev = loopDevice('release', 64);
    const byRelease = await runCli(['burn', '2026.11', dev, '--force', '--yes'], project);
    expect(byRelease.stderr).toMatch(
      /release 2026\.11 \(installer builds\/usb-installer-2026\.11-main-1a2b3c4d\.raw\)/,
    );
    expect(byRelease.code).toBe(0);
    expect(sha(dev, IMAGE_SIZE)).toBe(sha(raw, IMAGE_SIZE));

    expect(byRelease.stderr).toContain('release 2026.11 is unsigned; installer checksum as recorded');

    // Signed: osbake keys init, R.json and R.SHA256SUMS signed as osbake release signs them; then
    // burn says who signed, and refuses once R.SHA256SUMS was altered (before writing anything).
    const env = { GNUPGHOME: join(dir, 'gnupg') };
    const init = await runCli(['keys', 'init', '--uid', 'Burn Test <burn@example.org>'], project, env);
    expect(init.code, init.stderr).toBe(0);
    const fpr = /made ([0-9A-F]{40})/.exec(init.stdout)?.[1] as string;
    const rel = join(project, 'store/releases');
    await mkdir(rel, { recursive: true });
    const artifact = {
      name: 'usb-installer',
      kind: 'installer',
      path: 'builds/usb-installer-2026.11-main-1a2b3c4d.raw',
      sha256: sha(raw, size),
      size,
    };
    writeFileSync(join(rel, '2026.11.json'), JSON.stringify({ release: '2026.11', artifacts: [artifact] }));
    writeFileSync(join(rel, '2026.11.SHA256SUMS'), `${artifact.sha256}  ${artifact.path}\n`);
    for (const f of ['2026.11.json', '2026.11.SHA256SUMS']) {
      execFileSync('gpg', ['--batch', '--homedir', env.GNUPGHOME, '--armor', '--detach-sign', join(rel, f)]);
    }
    const signedOut = join(dir, 'signed-stick.raw');
    const signed = await runCli(['burn', '2026.11', signedOut], project, env);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toContain(`good signature by Burn Test <burn@example.org> (${fpr})`);
    writeFileSync(join(rel, '2026.11.SHA256SUMS'), `${'0'.repeat(64)}  ${artifact.path}\n`);
    const altered = await runCli(['burn', '2026.11', join(dir, 'altered-stick.raw')], project, env);
    expect(altered.code).toBe(1);
    expect(altered.stderr).toMatch(/BAD signature .*\[E_SIGNATURE\]/);
    expect(existsSync(join(dir, 'altered-stick.raw'))).toBe(false);

    const byName = await runCli(
      ['burn', 'usb-installer-2026.11-main-1a2b3c4d', dev, '--dry-run', '--force'],
      project,
    );
    expect(byName.stdout).toMatch(
      /dry run: all checks passed; would write build usb-installer-2026\.11-main-1a2b3c4d\.raw/,
    );

    const dev2 = loopDevice('qcow2', 64);
    const byQcow2 = await runCli(['burn', join(dir, 'disk.qcow2'), dev2, '--force', '--yes'], dir);
    expect(byQcow2.stderr).toMatch(/converting disk\.qcow2 \(qcow2\) to a temporary raw image/);
    expect(byQcow2.code).toBe(0);
    expect(sha(dev2, IMAGE_SIZE)).toBe(sha(raw, IMAGE_SIZE));
  });
});

describe('osbake burn catches corruption', () => {
  it('a byte flipped on the device between write and read-back', async () => {
    const img = sparseImage('flip.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('flip', 64);
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) > 0 };
    const noProgress = { start() {}, add() {}, end() {} };
    const flipAt = 5 * MiB + 4096 + 12345;
    const burn = runBurn({
      source: img,
      device: dev,
      projectDir: dir,
      force: 'removable',
      yes: true,
      out: sink,
      err: sink,
      progress: noProgress,
      log: createNullLogger(),
      beforeVerify: async () => {
        // Another writer changes one byte behind osbake's back (O_EXCL does not stop plain opens).
        const fd = openSync(dev, 'r+');
        const b = Buffer.alloc(1);
        execRead(fd, b, 1, flipAt);
        b[0] = (b[0] ?? 0) ^ 0xff;
        writeSync(fd, b, 0, 1, flipAt);
        closeSync(fd);
      },
    });
    await expect(burn).rejects.toMatchObject({
      code: 'E_BURN_VERIFY',
      message: expect.stringMatching(/verification failed: blocks 1281-2048 \(bytes 5246976\.\.8392703\)/),
    });
  });

  it('a bmap whose range checksum does not match the image', async () => {
    const img = sparseImage('badsum.raw', IMAGE_SIZE, IMAGE_DATA);
    const { bmap } = await createBmap(img, createNullLogger());
    const ranges = bmap.ranges.map((r, i) => (i === 1 ? { ...r, sha256: 'f'.repeat(64) } : r));
    writeFileSync(`${img}.bmap`, formatBmap({ ...bmap, ranges }));
    const dev = loopDevice('badsum', 64);
    const r = await runCli(['burn', img, dev, '--force', '--yes'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: .*badsum\.raw does not match its bmap: blocks 1281-2048 have sha256 [0-9a-f]{64}, the bmap says f{64}/,
    );
    expect(r.stderr).toMatch(/\(\/dev\/loop\d+ holds the image as it is\)/);
    expect(r.stderr).toMatch(/hint: /);
    // Without the read-back the data is hashed as it is written: caught at that range.
    const nv = await runCli(['burn', img, dev, '--force', '--yes', '--no-verify'], dir);
    expect(nv.code).toBe(1);
    expect(nv.stderr).toMatch(
      /does not match its bmap: blocks 1281-2048 .*\(\/dev\/loop\d+ now holds a partial image\)/,
    );
  });
});

describe('osbake burn to several drives at once', () => {
  it('writes and verifies each; one that fails mid-write does not stop the others; table, JSON, exit 1', async () => {
    const img = sparseImage('many.raw', IMAGE_SIZE, IMAGE_DATA);
    const good = [loopDevice('many1', 64), loopDevice('many2', 80), loopDevice('many3', 64)];
    // Too small: the image's data at 40 MiB lies past its end (size check forced): fails mid-write.
    const small = loopDevice('many-small', 32);
    const r = await runCli(
      [
        'burn',
        img,
        good[0] as string,
        small,
        good[1] as string,
        good[2] as string,
        '--force',
        'removable,size',
        '--yes',
      ],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${small}: FAILED \\(short write on ${small} at byte 41943040`));
    for (const d of good) {
      expect(r.stdout).toMatch(new RegExp(`^${d} +\\S+ .* ok +[\\d.]+ s +[\\d.]+ s$`, 'm'));
      expect(sha(d, IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
    }
    expect(r.stdout).toMatch(new RegExp(`^${small} .*FAILED: short write`, 'm'));
    expect(r.stderr).toMatch(/3 of 4 drives written and verified; failed: \/dev\/loop\d+ \[E_BURN_PARTIAL\]/);

    const j = await runCli(
      ['burn', img, good[0] as string, good[1] as string, '--force', '--yes', '--json'],
      dir,
    );
    expect(j.code, j.stderr).toBe(0);
    const report = JSON.parse(j.stdout) as { device: string; ok: boolean; verify_s: number }[];
    expect(report.map((x) => [x.device, x.ok])).toEqual([
      [good[0], true],
      [good[1], true],
    ]);
    expect(report.every((x) => x.verify_s >= 0)).toBe(true);
  });

  it('refuses before writing anything when one drive is refused or named twice', async () => {
    const img = sparseImage('many-refuse.raw', IMAGE_SIZE, IMAGE_DATA);
    const a = loopDevice('refuse-a', 64);
    const b = loopDevice('refuse-b', 64);
    const before = sha(a, 8 * MiB);
    const notForced = await runCli(['burn', img, a, b, '--yes'], dir);
    expect(notForced.code).toBe(1);
    expect(notForced.stderr).toMatch(/refusing to write \/dev\/loop\d+: .*not a removable disk/);
    const twice = await runCli(['burn', img, a, a, '--force', '--yes'], dir);
    expect(twice.stderr).toMatch(/named twice \[E_USAGE\]/);
    expect(sha(a, 8 * MiB)).toBe(before);
  });
});

describe('osbake burn into a file (as bmaptool copy)', () => {
  it('writes a sparse, verified copy; keeps the bmap it made; the next burn uses it', async () => {
    const img = sparseImage('tofile.raw', IMAGE_SIZE, IMAGE_DATA);
    const dest = join(dir, 'copy.raw');
    const r = await runCli(['burn', img, dest], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 4\.0 MiB to .*copy\.raw .*holes left as holes \(a new sparse file\)/);
    expect(r.stdout).toMatch(/verified 4 range\(s\) read back/);
    expect(sha(dest, IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
    expect(statSync(dest).size).toBe(IMAGE_SIZE);
    // Sparse: about the 4 MiB of data allocated, not 64 MiB.
    expect(statSync(dest).blocks * 512).toBeLessThan(8 * MiB);
    // Replacing a file that exists is asked for, as a drive is: no terminal and no --yes → refused.
    const asked = await runCli(['burn', img, dest], dir);
    expect(asked.code).toBe(1);
    expect(asked.stderr).toMatch(/not writing .*copy\.raw: no terminal to confirm on \[E_BURN_CONFIRM\]/);
    const again = await runCli(['burn', img, dest, '--yes'], dir);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/making one/);
    expect(again.stderr).toContain(`(bmap: ${img}.bmap)`);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  it('--nobmap writes every byte; --bmap FILE takes a block map from elsewhere', async () => {
    const img = sparseImage('nobmap.raw', IMAGE_SIZE, IMAGE_DATA);
    const full = await runCli(['burn', img, join(dir, 'full.raw'), '--nobmap'], dir);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toMatch(/wrote 64\.0 MiB .*\nverified 1 range/);
    expect(sha(join(dir, 'full.raw'), IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
    const elsewhere = join(dir, 'maps');
    await mkdir(elsewhere, { recursive: true });
    execFileSync('bmaptool', ['create', '-o', join(elsewhere, 'x.bmap'), img], { stdio: 'ignore' });
    const given = await runCli(
      ['burn', img, join(dir, 'given.raw'), '--bmap', join(elsewhere, 'x.bmap')],
      dir,
    );
    expect(given.code, given.stderr).toBe(0);
    expect(given.stderr).toContain(`(bmap: ${join(elsewhere, 'x.bmap')})`);
    expect(sha(join(dir, 'given.raw'), IMAGE_SIZE)).toBe(sha(img, IMAGE_SIZE));
  });

  it('replaces an existing file only with a complete, verified copy', async () => {
    const img = sparseImage('replace.raw', IMAGE_SIZE, IMAGE_DATA);
    const { bmap } = await createBmap(img, createNullLogger());
    const ranges = bmap.ranges.map((r, i) => (i === 2 ? { ...r, sha256: 'e'.repeat(64) } : r));
    writeFileSync(join(dir, 'bad.bmap'), formatBmap({ ...bmap, ranges }));
    const dest = join(dir, 'old.raw');
    writeFileSync(dest, 'the old contents\n');
    const r = await runCli(['burn', img, dest, '--bmap', join(dir, 'bad.bmap'), '--yes'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not match its bmap/);
    expect(readFileSync(dest, 'utf8')).toBe('the old contents\n');
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  it.each([
    ['the image itself', (img: string) => [img, img], /E_BURN_SAME_FILE/],
    ['a directory', (img: string) => [img, dir], /is a directory \[E_BURN_TARGET\]/],
    [
      'a file in a missing directory',
      (img: string) => [img, join(dir, 'nope/x.raw')],
      /no directory .* \[E_BURN_TARGET\]/,
    ],
    [
      'a missing /dev path',
      (img: string) => [img, '/dev/osbake-none'],
      /no block device \/dev\/osbake-none \[E_BURN_NO_DEVICE\]/,
    ],
    [
      'a drive name without /dev/ (never a new file named vda)',
      (img: string) => [img, 'vda', '--yes'],
      /vda looks like a drive name: did you mean \/dev\/vda\? \[E_BURN_TARGET\]/,
    ],
    [
      '--bmap and --nobmap together',
      (img: string) => [img, join(dir, 'y.raw'), '--bmap', `${img}.bmap`, '--nobmap'],
      /exclude each other \[E_USAGE\]/,
    ],
  ])('refuses %s', async (_what, args, code) => {
    const img = sparseImage('refuse.raw', IMAGE_SIZE, IMAGE_DATA);
    execFileSync('bmaptool', ['create', '-o', `${img}.bmap`, img], { stdio: 'ignore' });
    const r = await runCli(['burn', ...args(img)], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(code);
  });
});

describe('osbake burn refuses', () => {
  /** Each refusal alone: exit 1, one error line and a hint, and the device left as it was. */
  async function refused(args: string[], dev: string | undefined, code: RegExp, cwd = dir) {
    const before = dev ? sha(dev, 8 * MiB) : '';
    const r = await runCli(['burn', ...args], cwd);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('osbake: error: '))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^hint: /);
    expect(r.stderr).toMatch(code);
    if (dev) expect(sha(dev, 8 * MiB)).toBe(before);
    return r;
  }

  it('a non-removable disk (a loop device) without --force', async () => {
    const img = sparseImage('r1.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r1', 64);
    const r = await refused(
      [img, dev, '--yes'],
      dev,
      /refusing to write \/dev\/loop\d+: .* is not a removable disk/,
    );
    expect(r.stderr).toMatch(/hint: .*--force removable/);
  });

  it('a disk with a mounted partition; and O_EXCL still refuses it when the check is forced', async () => {
    const img = sparseImage('r2.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r2', 64);
    execFileSync('sfdisk', ['-q', dev], { input: 'label: dos\n,16M,L\n,,L\n' });
    execFileSync('partx', ['-a', dev]);
    execFileSync('mkfs.ext4', ['-q', `${dev}p1`]);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt, { recursive: true });
    execFileSync('mount', [`${dev}p1`, mnt]);
    mounted.push(mnt);
    await refused([img, dev, '--force', 'removable', '--yes'], dev, new RegExp(`in use: ${dev}p1 on ${mnt}`));
    await refused(
      [img, dev, '--force', 'removable,mounted', '--yes'],
      dev,
      /is busy: mounted, or opened exclusively/,
    );
  });

  it('the disk holding / of this machine, even with --force all, in a dry run, before opening anything', async () => {
    const img = sparseImage('r3.raw', IMAGE_SIZE, IMAGE_DATA);
    const root = sh('findmnt', '-n', '-o', 'SOURCE', '/');
    const disk = `/dev/${sh('lsblk', '-n', '-d', '-o', 'PKNAME', root) || root.replace('/dev/', '')}`;
    await refused(
      [img, disk, '--force', 'all', '--dry-run'],
      undefined,
      new RegExp(`refusing to write ${disk}: ${disk} holds the root file system`),
    );
  });

  it('a device too small for the image', async () => {
    const img = sparseImage('r4.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r4', 32);
    await refused(
      [img, dev, '--force', '--yes'],
      dev,
      /is too small: 33554432 bytes, the image needs 67108864/,
    );
  });

  it('a read-only device, even with --force all', async () => {
    const img = sparseImage('r5.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r5', 64, { readOnly: true });
    await refused([img, dev, '--force', 'all', '--yes'], dev, /is read-only/);
  });

  it('no terminal to confirm on and no --yes', async () => {
    const img = sparseImage('r6.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r6', 64);
    await refused([img, dev, '--force'], dev, /not writing \/dev\/loop\d+: no terminal to confirm on/);
  });

  it('a short write: the image has data beyond the end of the device (size check forced)', async () => {
    const img = sparseImage('r7.raw', IMAGE_SIZE, IMAGE_DATA);
    const dev = loopDevice('r7', 32);
    const r = await runCli(['burn', img, dev, '--force', 'removable,size', '--yes'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: short write on \/dev\/loop\d+ at byte 41943040: 0 of 8192 bytes written \(ENOSPC\)/,
    );
    expect(r.stderr).toMatch(/hint: the device is smaller than the image/);
  });
});

describe('bmap compatibility with bmaptool', () => {
  it('osbake makes the same ranges and checksums as bmaptool create, and bmaptool copy accepts its bmap', async () => {
    const img = sparseImage('compat.raw', IMAGE_SIZE, IMAGE_DATA);
    execFileSync('bmaptool', ['create', '-o', join(dir, 'compat.bmaptool.bmap'), img], { stdio: 'ignore' });
    const theirs = await readBmap(join(dir, 'compat.bmaptool.bmap'));
    const ours = await createBmap(img, createNullLogger());
    expect(ours.bmap).toEqual(theirs);
    writeFileSync(`${img}.bmap`, ours.text);
    const dev = loopDevice('compat', 64);
    execFileSync('bmaptool', ['copy', '--bmap', `${img}.bmap`, img, dev], { stdio: 'ignore' });
    for (const [offset, length] of IMAGE_DATA)
      expect(sha(dev, length, offset)).toBe(sha(img, length, offset));
    expect(readFileSync(`${img}.bmap`, 'utf8')).toMatch(/<bmap version="2.0">/);
  });
});
