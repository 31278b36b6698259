/**
 * The real thing, both ways, from the same inputs: `osbake build debian12-base --builder chroot`
 * (mmdebstrap vanilla disk, Ansible over community.general.chroot) and `--builder qemu` (Packer's
 * qemu builder under TCG, Ansible over SSH) — the one full Packer build of the suite. Both are
 * boot-tested by the build itself, with one check of this test's own beside the image's (packages,
 * release, host keys made at first boot); the chroot image boots again under OVMF (osbake test),
 * and the two images' package sets and /etc/osbake-release are compared.
 *
 * The image's package list is cut to four packages here (the roles, playbook and template are the
 * repository's own): installing the full list in a TCG VM takes 7-10 minutes (FACTS.md), the chroot
 * build of the full list is exercised by bench/build.sh and the README's main command.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { mountChroot } from '../../src/builders/chroot/mount.js';
import { createNullLogger } from '../../src/log/logger.js';
import {
  type CliRun,
  cmd,
  git,
  loopDevicesBacking,
  makeProject,
  mountsUnder,
  REPO,
  runCli,
  type TempProject,
} from './helpers.js';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

const BASE_DEFAULTS = readFileSync(
  join(REPO, 'images/debian12-base/ansible/roles/base/defaults/main.yml'),
  'utf8',
).replace(/base_packages:\n(?: {2}- .*\n)+/, 'base_packages: [jq, chrony, rsync, htop]\n');

/**
 * A check of this test's own, run by each build's boot test beside the image's (tests/): the
 * Ansible-installed packages, the release, chrony's servers, and SSH host keys made at this first
 * boot (the first-boot unit's condition — no key yet — held: the image carried none, so no two
 * nodes share one).
 */
const ITEST_CHECK = `#!/bin/sh
set -eu
for p in jq chrony rsync htop; do
  dpkg-query -W -f '\${db:Status-Abbrev}' "$p" | grep -q '^ii' || { echo "$p is not installed"; exit 1; }
done
grep -q '^OSBAKE_RELEASE=itest' /etc/osbake-release || { echo "release: $(cat /etc/osbake-release)"; exit 1; }
grep -q 'pool 2.debian.pool.ntp.org iburst' /etc/chrony/conf.d/osbake.conf
grep -Eqx '[0-9a-f]{32}' /etc/machine-id
test "$(systemctl is-active chrony)" = active
test "$(systemctl show -p ConditionResult osbake-ssh-hostkeys)" = ConditionResult=yes || { echo "the image carried host keys"; exit 1; }
grep -q '^ssh-ed25519 ' /etc/ssh/ssh_host_ed25519_key.pub
echo "itest ok"
`;

function packageSet(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).sort();
}

describe('osbake build debian12-base, chroot and Packer qemu (real mmdebstrap, Ansible, Packer, QEMU)', () => {
  let project: TempProject;
  let result: CliRun;
  let packer: CliRun;
  let head: string;

  beforeAll(async () => {
    project = await makeProject({
      files: { 'images/debian12-base/ansible/roles/base/defaults/main.yml': BASE_DEFAULTS },
      executables: { 'images/debian12-base/tests/90-itest': ITEST_CHECK },
      ownWorkDir: true,
    });
    head = git(project.dir, 'rev-parse', '--short=8', 'HEAD');
    result = await runCli(
      ['build', 'debian12-base', '--release', 'itest', '--builder', 'chroot', '--firmware', 'secureboot'],
      project.dir,
    );
    packer = await runCli(
      ['build', 'debian12-base', '--release', 'itest-packer', '--builder', 'qemu'],
      project.dir,
    );
  }, 50 * 60_000);

  afterAll(async () => {
    await project?.cleanup();
  });

  it('succeeds both ways and reports the artifact, builder, boot test and phases', () => {
    if (result.code !== 0) console.error(result.stdout, result.stderr);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`built debian12-base-itest-main-${head}`);
    expect(result.stdout).toMatch(/\(chroot, no VM\)/);
    expect(result.stderr).toMatch(/builder: chroot \(requested\)/);
    expect(result.stderr).toMatch(/base : Install the internet-dependent packages/);
    expect(result.stderr).toMatch(
      /boot test: passed \(secureboot, (KVM|TCG), SSH after [\d.]+ s, running, 4\/4 checks\)/,
    );
    expect(result.stdout).toMatch(
      /phases: +preflight [\d.]+s, patch-source [\d.]+s, vanilla [\d.]+s, working-copy [\d.]+s, chroot-mount [\d.]+s, ansible [\d.]+s, chroot-finish [\d.]+s, collect [\d.]+s, post-process [\d.]+s, boot-test [\d.]+s/,
    );
    // Nothing of the chroot is left mounted or attached.
    expect(mountsUnder(project.workDir)).toEqual([]);
    expect(loopDevicesBacking(project.workDir)).toEqual([]);

    if (packer.code !== 0) console.error(packer.stdout, packer.stderr);
    expect(packer.code).toBe(0);
    expect(packer.stderr).toMatch(/accelerator: (KVM|TCG) \(/);
    expect(packer.stderr).toMatch(/TASK \[base : Install the internet-dependent packages\]/);
    expect(packer.stdout).toMatch(
      /phases: +preflight [\d.]+s, patch-source [\d.]+s, vanilla [\d.]+s, ssh-key [\d.]+s, packer [\d.]+s/,
    );
    expect(packer.stdout).toMatch(/test: +passed \(bios/);
  });

  it('makes the same image either way: identical package sets; osbake-release differs only in the release', () => {
    const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
    const [c, q] = m.builds;
    expect(c.builder_type).toBe('chroot');
    expect(q.builder_type).toBe('qemu');
    // Both started from the same cached vanilla disk.
    expect(c.custom_data.vanilla_key).toBe(q.custom_data.vanilla_key);
    const dir = join(project.dir, 'store/builds');
    const chrootPkgs = packageSet(join(dir, `${c.custom_data.artifact}.packages.tsv`));
    const packerPkgs = packageSet(join(dir, `${q.custom_data.artifact}.packages.tsv`));
    expect(chrootPkgs.length).toBeGreaterThan(150);
    expect(chrootPkgs).toEqual(packerPkgs);
    // /etc/osbake-release as the boot tests read it: same keys; the values that name the build
    // (OSBAKE_BUILD, OSBAKE_RELEASE) differ because the two builds are two releases of one commit.
    const rc = c.custom_data.test.release as Record<string, string>;
    const rq = q.custom_data.test.release as Record<string, string>;
    expect(Object.keys(rc).sort()).toEqual(Object.keys(rq).sort());
    expect(rc).toMatchObject({
      OSBAKE_IMAGE: 'debian12-base',
      OSBAKE_RELEASE: 'itest',
      OSBAKE_BUILD: c.custom_data.artifact,
    });
    expect(rq).toMatchObject({
      OSBAKE_IMAGE: 'debian12-base',
      OSBAKE_RELEASE: 'itest-packer',
      OSBAKE_BUILD: q.custom_data.artifact,
    });
    // OSBAKE_GIT_COMMIT differs too: the chroot build committed manifest.json, so the Packer build
    // started one commit later (the manifest commit changes no input).
    expect(rc.OSBAKE_GIT_COMMIT).toBe(c.custom_data.git_commit);
    expect(rq.OSBAKE_GIT_COMMIT).toBe(q.custom_data.git_commit);
    expect(git(project.dir, 'diff', '--name-only', c.custom_data.git_commit, q.custom_data.git_commit)).toBe(
      'images/debian12-base/manifest.json',
    );
    // Both passed the same boot test and image checks.
    for (const b of [c, q]) {
      expect(b.custom_data.test).toMatchObject({ passed: true, state: 'running', failed_units: [] });
      expect(
        b.custom_data.test.checks.map((x: { name: string; passed: boolean }) => [x.name, x.passed]),
      ).toEqual([
        ['10-packages', true],
        ['20-services', true],
        ['30-first-boot', true],
        ['90-itest', true],
      ]);
    }
  });

  it('puts the image, its .sha256 and package list in the store, complete', async () => {
    const dir = join(project.dir, 'store/builds');
    const name = `debian12-base-itest-main-${head}`;
    expect((await readdir(dir)).filter((f) => f.startsWith(`${name}.`)).sort()).toEqual([
      `${name}.cdx.json`,
      `${name}.packages.tsv`,
      `${name}.qcow2`,
      `${name}.qcow2.sha256`,
    ]);
    const sum = readFileSync(join(dir, `${name}.qcow2.sha256`), 'utf8');
    expect(sum).toBe(`${await sha256(join(dir, `${name}.qcow2`))}  ${name}.qcow2\n`);
    const pkgs = readFileSync(join(dir, `${name}.packages.tsv`), 'utf8');
    for (const p of ['jq', 'chrony', 'rsync', 'htop', 'openssh-server']) {
      expect(pkgs).toMatch(new RegExp(`^${p}\\t\\S+\\tamd64$`, 'm'));
    }
    // The CycloneDX SBOM names the image (with its sha256) and every package of the list.
    const sbom = JSON.parse(readFileSync(join(dir, `${name}.cdx.json`), 'utf8'));
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.metadata.component.hashes[0].content).toBe(sum.split(' ')[0]);
    expect(sbom.components).toHaveLength(pkgs.split('\n').filter(Boolean).length);
    expect(sbom.components.map((c: { purl: string }) => c.purl)).toContainEqual(
      expect.stringMatching(/^pkg:deb\/debian\/jq@.*arch=amd64&distro=debian-12$/),
    );
  });

  it('records a Packer-shaped manifest.json entry and commits it', () => {
    const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
    expect(m.builds).toHaveLength(2);
    const b = m.builds[0];
    expect(b).toMatchObject({ name: 'debian12-base', builder_type: 'chroot' });
    expect(b.custom_data).toMatchObject({ builder: 'chroot', accelerator: 'none' });
    expect(b.files[0].name).toBe(`debian12-base-itest-main-${head}.qcow2`);
    expect(b.custom_data).toMatchObject({
      release: 'itest',
      git_branch: 'main',
      git_dirty: false,
      osbake_version: expect.any(String),
    });
    expect(b.custom_data.package_count).toBeGreaterThan(150);
    expect(b.custom_data.git_commit).toMatch(new RegExp(`^${head}`));
    expect(m.builds[1].custom_data.accelerator).toMatch(/^(kvm|tcg)$/);
    expect(m.last_run_uuid).toBe(m.builds[1].packer_run_uuid);
    expect(git(project.dir, 'log', '-2', '--format=%s').split('\n')).toEqual([
      `created new image for debian12-base from commit ${m.builds[1].custom_data.git_commit.slice(0, 8)}`,
      `created new image for debian12-base from commit ${head}`,
    ]);
    expect(git(project.dir, 'log', '-2', '--format=%b')).toContain(`debian12-base-itest-main-${head}`);
    expect(git(project.dir, 'status', '--porcelain')).toBe('');
  });

  it('writes a full timestamped log per build', () => {
    const read = (file: string) =>
      readFileSync(join(project.dir, 'out', file), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    // The chroot build's commit of manifest.json moved HEAD: the Packer build has a log of its own.
    const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
    const chroot = read(m.builds[0].custom_data.log_file.replace(/^out\//, ''));
    const packerLog = read(m.builds[1].custom_data.log_file.replace(/^out\//, ''));
    expect(m.builds[0].custom_data.log_file).toMatch(
      new RegExp(`^out/debian12-base-${head}-[0-9a-f]{8}\\.log$`),
    );
    for (const lines of [chroot, packerLog]) {
      expect(lines.every((l) => typeof l.time === 'string')).toBe(true);
      expect(lines.some((l) => /build end/.test(l.msg))).toBe(true);
      expect(lines.some((l) => l.msg === 'boot test' && l.test?.passed === true)).toBe(true);
    }
    expect(chroot.some((l) => l.src === 'ansible')).toBe(true);
    expect(packerLog.some((l) => l.src === 'packer')).toBe(true);
  });

  it(
    'boots under OVMF too (osbake test --firmware uefi): the guest says it booted UEFI, Secure Boot off',
    async () => {
      const build = `debian12-base-itest-main-${head}`;
      const r = await runCli(['test', build, '--firmware', 'uefi', '--json'], project.dir);
      expect(r.code, r.stderr).toBe(0);
      const t = JSON.parse(r.stdout) as {
        passed: boolean;
        boot_mode: string;
        firmware: string;
        state: string;
      };
      expect(t).toMatchObject({ passed: true, firmware: 'uefi', boot_mode: 'uefi', state: 'running' });
    },
    15 * 60_000,
  );

  it(
    'keeps root=UUID when a kernel package runs update-grub in a chroot (no udev, no /dev/disk/by-uuid)',
    async () => {
      const image = join(project.dir, `store/builds/debian12-base-itest-main-${head}.qcow2`);
      const scratch = await mkdtemp(join(tmpdir(), 'osbake-grub-'));
      onTestFinished(() => rm(scratch, { recursive: true, force: true }));
      const raw = join(scratch, 'disk.raw');
      await cmd('qemu-img', ['convert', '-O', 'raw', image, raw]);
      const root = join(scratch, 'root');
      const m = await mountChroot({
        rawDisk: raw,
        root,
        guards: {},
        log: createNullLogger(),
        signal: new AbortController().signal,
      });
      try {
        // What linux-image-*'s postinst runs through /etc/kernel/postinst.d/zz-update-grub.
        execFileSync('chroot', [root, 'update-grub'], { stdio: 'pipe' });
        const cfg = readFileSync(join(root, 'boot/grub/grub.cfg'), 'utf8');
        const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', m.root], { encoding: 'utf8' }).trim();
        const uuid = execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', device], {
          encoding: 'utf8',
        }).trim();
        expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
        expect(cfg).toMatch(
          new RegExp(`linux\\s+/boot/vmlinuz-\\S+ root=UUID=${uuid} ro console=tty0 console=ttyS0,115200n8`),
        );
        expect(cfg).not.toMatch(/root=\/dev\//);
        expect(cfg).toContain('terminal_output console serial');
      } finally {
        await m.release();
      }
      expect(mountsUnder(scratch)).toEqual([]);
      expect(loopDevicesBacking(scratch)).toEqual([]);
    },
    5 * 60_000,
  );
});
