/**
 * The real thing: `osbake build debian12-base` with mmdebstrap, Packer (qemu builder, TCG), Ansible;
 * then the produced image is booted in QEMU and inspected over SSH.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  bootDisk,
  type CliRun,
  git,
  makeProject,
  runCli,
  SHARED_WORK_DIR,
  type TempProject,
} from './helpers.js';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

describe('osbake build debian12-base (real mmdebstrap + Packer + Ansible + QEMU)', () => {
  let project: TempProject;
  let result: CliRun;
  let head: string;

  beforeAll(async () => {
    project = await makeProject();
    head = git(project.dir, 'rev-parse', '--short=8', 'HEAD');
    result = await runCli(['build', 'debian12-base', '--release', 'itest'], project.dir);
  }, 40 * 60_000);

  afterAll(async () => {
    await project?.cleanup();
  });

  it('succeeds and reports the artifact, accelerator and phases', () => {
    if (result.code !== 0) console.error(result.stdout, result.stderr);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`built debian12-base-itest-main-${head}`);
    expect(result.stderr).toMatch(/accelerator: (KVM|TCG) \(/);
    expect(result.stderr).toMatch(/TASK \[base : Install the internet-dependent packages\]/);
    expect(result.stdout).toMatch(
      /phases: +preflight [\d.]+s, patch-source [\d.]+s, vanilla [\d.]+s, ssh-key [\d.]+s, packer [\d.]+s/,
    );
  });

  it('puts the image, its .sha256 and package list in the store, complete', async () => {
    const dir = join(project.dir, 'store/builds');
    const name = `debian12-base-itest-main-${head}`;
    expect((await readdir(dir)).sort()).toEqual([
      `${name}.cdx.json`,
      `${name}.packages.tsv`,
      `${name}.qcow2`,
      `${name}.qcow2.sha256`,
    ]);
    const sum = readFileSync(join(dir, `${name}.qcow2.sha256`), 'utf8');
    expect(sum).toBe(`${await sha256(join(dir, `${name}.qcow2`))}  ${name}.qcow2\n`);
    const pkgs = readFileSync(join(dir, `${name}.packages.tsv`), 'utf8');
    for (const p of [
      'build-essential',
      'jq',
      'chrony',
      'nfs-common',
      'rsync',
      'python3-venv',
      'openssh-server',
    ]) {
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
    expect(m.builds).toHaveLength(1);
    const b = m.builds[0];
    expect(m.last_run_uuid).toBe(b.packer_run_uuid);
    expect(b).toMatchObject({ name: 'debian12-base', builder_type: 'qemu' });
    expect(b.files[0].name).toBe(`debian12-base-itest-main-${head}.qcow2`);
    expect(b.custom_data).toMatchObject({
      release: 'itest',
      git_branch: 'main',
      git_dirty: false,
      accelerator: expect.stringMatching(/^(kvm|tcg)$/),
      osbake_version: expect.any(String),
    });
    expect(b.custom_data.package_count).toBeGreaterThan(200);
    expect(b.custom_data.git_commit).toMatch(new RegExp(`^${head}`));
    expect(git(project.dir, 'log', '-1', '--format=%s')).toBe(
      `created new image for debian12-base from commit ${head}`,
    );
    expect(git(project.dir, 'log', '-1', '--format=%b')).toContain(`debian12-base-itest-main-${head}`);
    expect(git(project.dir, 'status', '--porcelain')).toBe('');
  });

  it('writes a full timestamped log', () => {
    const log = readFileSync(join(project.dir, `out/debian12-base-${head}.log`), 'utf8')
      .split('\n')
      .filter(Boolean);
    const lines = log.map((l) => JSON.parse(l));
    expect(lines.every((l) => typeof l.time === 'string')).toBe(true);
    expect(lines.some((l) => l.src === 'packer')).toBe(true);
    expect(lines.some((l) => /build end/.test(l.msg))).toBe(true);
  });

  it(
    'boots; the Ansible-installed packages are there and the host keys are new',
    async () => {
      const image = join(project.dir, `store/builds/debian12-base-itest-main-${head}.qcow2`);
      const scratch = await mkdtemp(join(tmpdir(), 'osbake-boot-'));
      onTestFinished(() => rm(scratch, { recursive: true, force: true }));
      const vm = await bootDisk(image, scratch);
      let imageHostKey: string;
      try {
        const wanted = ['build-essential', 'jq', 'chrony', 'nfs-common', 'rsync', 'python3-venv'];
        const out = vm.ssh(`dpkg-query -W -f '\${db:Status-Abbrev}|\${Package}\\n' ${wanted.join(' ')}`);
        const installed = out
          .split('\n')
          .filter((l) => l.startsWith('ii |'))
          .map((l) => l.slice(4))
          .sort();
        expect(installed).toEqual([...wanted].sort());
        expect(vm.ssh('cat /etc/osbake-release')).toContain('OSBAKE_RELEASE=itest');
        expect(vm.ssh('cat /etc/chrony/conf.d/osbake.conf')).toContain('pool 2.debian.pool.ntp.org iburst');
        expect(vm.ssh('cat /etc/machine-id').trim()).toMatch(/^[0-9a-f]{32}$/);
        expect(vm.ssh('systemctl is-active chrony').trim()).toBe('active');
        // The image carried no host keys: the first-boot unit's condition (no key yet) held.
        expect(vm.ssh('systemctl show -p ConditionResult osbake-ssh-hostkeys').trim()).toBe(
          'ConditionResult=yes',
        );
        imageHostKey = vm.hostKey();
      } finally {
        await vm.stop();
      }
      expect(imageHostKey).toMatch(/^ssh-ed25519 /);

      // The vanilla disk this build started from: its first boot makes host keys of its own.
      const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
      const vanillaKey = m.builds[0].custom_data.vanilla_key as string;
      const vanilla = join(SHARED_WORK_DIR, 'cache/vanilla', `debian-bookworm-${vanillaKey}.qcow2`);
      expect(existsSync(vanilla)).toBe(true);
      const vvm = await bootDisk(vanilla, scratch);
      try {
        const vanillaHostKey = vvm.hostKey();
        expect(vanillaHostKey).toMatch(/^ssh-ed25519 /);
        expect(vanillaHostKey).not.toBe(imageHostKey);
      } finally {
        await vvm.stop();
      }
    },
    15 * 60_000,
  );
});
