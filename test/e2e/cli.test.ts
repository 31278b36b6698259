/** The CLI as a user meets it: help, listing, and one clear line (plus hint) for every bad input. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, makeProject, runCli, type TempProject } from '../integration/helpers.js';

describe('osbake CLI', () => {
  let project: TempProject;
  beforeAll(async () => {
    project = await makeProject();
  });
  afterAll(async () => {
    await project.cleanup();
  });

  it.each([[[]], [['build']], [['images']], [['serve']], [['publish']], [['verify']]])(
    '--help works for %j',
    async (verb) => {
      const r = await runCli([...verb, '--help'], project.dir);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: osbake/);
    },
  );

  it('explains serve and publish usage errors in one line with a hint', async () => {
    const port = await runCli(['serve', '--port', 'http'], project.dir);
    expect(port.code).toBe(1);
    expect(port.stderr).toBe(
      'osbake: error: --port http is not a port number [E_USAGE]\nhint: use a number from 0 to 65535\n',
    );
    const noStore = await runCli(['serve'], project.dir);
    expect(noStore.code).toBe(1);
    expect(noStore.stderr).toMatch(/store is not a directory \[E_[A-Z_]+\]\nhint: build an image first/);
    const both = await runCli(['publish'], project.dir);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/osbake publish needs a build or --release R/);
    const bw = await runCli(['publish', 'x', '--bwlimit', 'fast'], project.dir);
    expect(bw.stderr).toMatch(/--bwlimit fast is not a positive number/);
    const help = await runCli(['build', '--help'], project.dir);
    expect(help.stdout).toMatch(/--no-publish/);
    for (const opt of [
      '--json',
      '--no-test',
      '--firmware <fw>',
      '--var <name=value>',
      '--var-file <file>',
      '--builder <type>',
    ]) {
      expect(help.stdout).toContain(opt);
    }
  });

  it('netboot: help, the dnsmasq configuration, bad input in one line, no nodes yet', async () => {
    const help = await runCli(['netboot', '--help'], project.dir);
    expect(help.code).toBe(0);
    for (const verb of ['nodes', 'reinstall', 'dnsmasq-config']) expect(help.stdout).toContain(verb);
    expect((await runCli(['serve', '--help'], project.dir)).stdout).toContain('--netboot [release]');
    const conf = await runCli(
      ['netboot', 'dnsmasq-config', '--server', 'http://10.0.0.5:8080', '--subnet', '10.0.0.0/24'],
      project.dir,
    );
    expect(conf.code).toBe(0);
    expect(conf.stdout).toContain('dhcp-range=10.0.0.0,proxy');
    const bad = await runCli(
      ['netboot', 'dnsmasq-config', '--server', 'http://boot.example', '--subnet', '10.0.0.0/24'],
      project.dir,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /^osbake: error: --server "http:\/\/boot.example" is not valid \[E_USAGE\]\nhint: /,
    );
    const mac = await runCli(['netboot', 'reinstall', 'nonsense'], project.dir);
    expect(mac.code).toBe(1);
    expect(mac.stderr).toMatch(/"nonsense" is not a MAC address \[E_USAGE\]/);
    const nodes = await runCli(['netboot', 'nodes'], project.dir);
    expect(nodes.code).toBe(0);
    expect(nodes.stdout).toContain('no node has booted');
    // --netboot needs a release with an installer: said before anything listens.
    const none = await runCli(['serve', '--netboot', '--root', project.dir, '--port', '0'], project.dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/--netboot serves a release of the project: .* \[E_USAGE\]/);
  });

  it('refuses a netboot section that would break a boot script, with file and line', async () => {
    const p = await makeProject({
      extraConfig:
        'netboot:\n  nodes:\n    "52:54:00:aa:bb:01":\n      hostname: "a b"\n    52-54-00-AA-BB-01:\n      target: /dev/disk/by-id/x\n',
    });
    try {
      const r = await runCli(['netboot', 'nodes'], p.dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/osbake\.yaml:\d+/);
      expect(r.stderr).toContain('must be a host name');
      expect(r.stderr).toContain('the same MAC');
      expect(r.stderr).toContain('whole disk');
    } finally {
      await p.cleanup();
    }
  });

  it('lists the images', async () => {
    const r = await runCli(['images'], project.dir);
    expect(r.code).toBe(0);
    // No build yet: LATEST BUILD and REBUILT are "–".
    expect(r.stdout).toMatch(/NAME\s+DISTRO\s+LATEST BUILD\s+REBUILT\s+DESCRIPTION/);
    expect(r.stdout).toMatch(/debian12-base\s+debian bookworm\s+–\s+–\s+Debian 12/);
    const j = await runCli(['images', '--json'], project.dir);
    expect(JSON.parse(j.stdout)).toEqual([
      expect.objectContaining({
        name: 'debian12-base',
        distro: 'debian',
        latest_build: null,
        reproducible: null,
      }),
    ]);
  });

  it('requires --release', async () => {
    const r = await runCli(['build', 'debian12-base'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'osbake: error: osbake build needs --release <release> [E_USAGE]\nhint: e.g. osbake build debian12-base --release 2026.11 (the release this image belongs to)\n',
    );
  });

  it.each(['1.0/..', '../x', 'a b', '-rf', 'x'.repeat(300)])(
    'refuses --release %j before any work, build and build --all alike',
    async (rel) => {
      for (const args of [
        ['build', 'debian12-base', `--release=${rel}`],
        ['build', '--all', `--release=${rel}`],
      ]) {
        const r = await runCli(args, project.dir);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('is not a valid release name');
        expect(r.stderr).toMatch(/hint: release names must start with a letter or digit/);
        expect(r.stderr).not.toMatch(/building|builder:/);
      }
    },
  );

  it('names the known images for an unknown one', async () => {
    const r = await runCli(['build', 'nope', '--release', 'r'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no image named "nope"/);
    expect(r.stderr).toMatch(/hint: known images: debian12-base/);
    expect(r.stderr).not.toMatch(/ at .*\.js:\d+/);
  });

  it('refuses a dirty tree without --skip-commit', async () => {
    const f = join(project.dir, 'images/debian12-base/ansible/roles/base/defaults/main.yml');
    const orig = readFileSync(f, 'utf8');
    writeFileSync(f, `${orig}# local change\n`);
    try {
      const r = await runCli(['build', 'debian12-base', '--release', 'r'], project.dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /uncommitted changes \(images\/debian12-base\/ansible\/roles\/base\/defaults\/main.yml\)/,
      );
      expect(r.stderr).toMatch(/hint: commit them, or pass --skip-commit/);
    } finally {
      writeFileSync(f, orig);
    }
  });

  it('reports every configuration problem at once with file and line', async () => {
    const f = join(project.dir, 'osbake.yaml');
    const orig = readFileSync(f, 'utf8');
    writeFileSync(f, 'vm:\n  cpus: none\n  diskSize: 8T\nbuilder:\n  accelerator: hvf\n');
    try {
      const r = await runCli(['build', 'debian12-base', '--release', 'r'], project.dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/3 configuration problems/);
      expect(r.stderr).toMatch(/osbake\.yaml:2: vm\.cpus: /);
      expect(r.stderr).toMatch(/osbake\.yaml:3: vm\.diskSize: must be a size like 4096M or 8G/);
      expect(r.stderr).toMatch(/osbake\.yaml:5: builder\.accelerator: /);
    } finally {
      writeFileSync(f, orig);
    }
  });

  /** A PATH directory holding only the named programs. */
  function pathWith(...programs: string[]): string {
    const bin = mkdtempSync(join(tmpdir(), 'osbake-path-'));
    for (const p of programs) symlinkSync(p, join(bin, p.split('/').pop() as string));
    return bin;
  }

  it('names the Debian package of a missing tool in one line', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r'], project.dir, {
      PATH: pathWith(process.execPath),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'osbake: error: git not found [E_TOOL_MISSING]\nhint: install it with: apt-get install git\n',
    );
  });

  it('lists every missing build tool of the Packer builder with the packages to install', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r', '--builder', 'qemu'], project.dir, {
      PATH: pathWith(process.execPath, '/usr/bin/git'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /osbake: error: checking inputs, tools and accelerator: packer, qemu-system-x86_64, .* not found/,
    );
    expect(r.stderr).toMatch(
      /hint: install them with: apt-get install packer qemu-system-x86 qemu-utils ansible/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('lists every missing tool of the chroot builder (auto without KVM) with its Debian package', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r', '--builder', 'chroot'], project.dir, {
      PATH: pathWith(process.execPath, '/usr/bin/git'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/builder: chroot \(requested\)/);
    expect(r.stderr).toMatch(
      /osbake: error: checking inputs, tools and accelerator: ansible-playbook, qemu-img, losetup, partx, blkid, mount, umount, fstrim, chroot, mkfs\.ext4, debugfs, dumpe2fs, e2fsck, fallocate, mmdebstrap, .* not found/,
    );
    expect(r.stderr).toMatch(
      /hint: install them with: apt-get install ansible qemu-utils mount util-linux coreutils e2fsprogs mmdebstrap/,
    );
    expect(r.stderr).not.toMatch(/make sure it is on PATH/);
  });

  it('keeps running when its stdout goes away (EPIPE), then stops cleanly on SIGTERM', async () => {
    // A dropped ssh session closes the terminal: later writes fail with EPIPE. Without a handler
    // Node throws "Unhandled 'error' event" and a build would die before its cleanup.
    const root = mkdtempSync(join(tmpdir(), 'osbake-epipe-'));
    const child = spawn(process.execPath, [CLI, 'serve', '--root', root, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await new Promise((res) => setTimeout(res, 1500));
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
  });
});
