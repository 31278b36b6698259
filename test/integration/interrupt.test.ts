/**
 * Interrupting or failing a real build leaves nothing behind: no artifact in the store, no manifest
 * entry, no QEMU process, no loop device, no mount (bind mounts of the chroot included), no process
 * running inside the chroot, no work directory. Packer qemu: SIGINT during Ansible; chroot: SIGINT
 * and SIGHUP during Ansible, a failing task, and SIGTERM while the vanilla disk is assembled.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  loopDevicesBacking,
  makeProject,
  mountsUnder,
  qemuProcessesMentioning,
  REPO,
  runCli,
  SHARED_WORK_DIR,
  startCli,
  type TempProject,
} from './helpers.js';

function workDirsOf(project: TempProject, image: string): string[] {
  const dir = join(project.workDir, 'work');
  return existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith(`${image}-`)) : [];
}

/** Processes whose root directory is inside the project's work dir (left running in a chroot). */
function processesInChroots(workDir: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/root`).startsWith(workDir)) pids.push(Number(pid));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function expectNothingLeft(project: TempProject, workBefore: string[], qemuBefore: number[]) {
  const work = project.workDir;
  expect(processesInChroots(work)).toEqual([]);
  const store = join(project.dir, 'store/builds');
  expect(existsSync(store) ? readdirSync(store) : []).toEqual([]);
  expect(existsSync(join(project.dir, 'images/debian12-base/manifest.json'))).toBe(false);
  expect(qemuProcessesMentioning(work).filter((p) => !qemuBefore.includes(p))).toEqual([]);
  expect(loopDevicesBacking(work)).toEqual([]);
  expect(mountsUnder(work)).toEqual([]);
  expect(workDirsOf(project, 'debian12-base')).toEqual(workBefore);
}

describe('interrupted builds clean up', () => {
  let project: TempProject | undefined;
  let cli: ReturnType<typeof startCli> | undefined;
  afterEach(async () => {
    // A failed assertion must not leave a build running: interrupt it and wait for its cleanup.
    if (cli && cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGINT');
      await cli.done;
    }
    cli = undefined;
    await project?.cleanup();
  });

  it(
    'Packer qemu: SIGINT during Ansible provisioning',
    async () => {
      project = await makeProject({ ownWorkDir: true });
      const before = workDirsOf(project, 'debian12-base');
      const qemuBefore = qemuProcessesMentioning(project.workDir);
      cli = startCli(
        ['build', 'debian12-base', '--release', 'int', '--skip-commit', '--builder', 'qemu'],
        project.dir,
      );
      await cli.until(/TASK \[base : /, 30 * 60_000);
      expect(qemuProcessesMentioning(project.workDir).filter((p) => !qemuBefore.includes(p))).toHaveLength(1);
      cli.child.kill('SIGINT');
      const r = await cli.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/SIGINT received/);
      expect(r.stderr).toMatch(/interrupted by SIGINT; cleaned up/);
      expectNothingLeft(project, before, qemuBefore);
    },
    40 * 60_000,
  );

  it.each([
    ['SIGINT', 130],
    ['SIGHUP', 130],
  ] as const)(
    'chroot: %s while apt installs packages inside the chroot',
    async (sig, code) => {
      project = await makeProject({ ownWorkDir: true });
      const before = workDirsOf(project, 'debian12-base');
      const qemuBefore = qemuProcessesMentioning(project.workDir);
      cli = startCli(
        ['build', 'debian12-base', '--release', 'int', '--skip-commit', '--builder', 'chroot'],
        project.dir,
      );
      await cli.until(/base : Install the internet-dependent packages/, 20 * 60_000);
      // apt is at work inside the chroot now (give it a moment to start dpkg/apt processes).
      await new Promise((r) => setTimeout(r, 3000));
      expect(mountsUnder(project.workDir).length).toBeGreaterThanOrEqual(6);
      expect(loopDevicesBacking(project.workDir)).toHaveLength(1);
      cli.child.kill(sig);
      const r = await cli.done;
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(new RegExp(`${sig} received`));
      expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}; cleaned up`));
      expectNothingLeft(project, before, qemuBefore);
    },
    30 * 60_000,
  );

  it(
    'chroot: a failing Ansible task fails the build and cleans up',
    async () => {
      const tasks = readFileSync(
        join(REPO, 'images/debian12-base/ansible/roles/base/tasks/main.yml'),
        'utf8',
      );
      project = await makeProject({
        files: {
          'images/debian12-base/ansible/roles/base/tasks/main.yml': `${tasks}\n- name: Fail on purpose\n  ansible.builtin.command: /bin/false\n`,
        },
      });
      const before = workDirsOf(project, 'debian12-base');
      const qemuBefore = qemuProcessesMentioning(project.workDir);
      const r = await startCli(
        ['build', 'debian12-base', '--release', 'int', '--skip-commit', '--builder', 'chroot'],
        project.dir,
      ).done;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/build failed at step "ansible"/);
      expect(r.stderr).toMatch(/Fail on purpose/);
      expectNothingLeft(project, before, qemuBefore);
    },
    30 * 60_000,
  );

  it(
    'chroot: kill -9 of osbake leaves mounts and a loop device; osbake clean removes them all',
    async () => {
      project = await makeProject({ ownWorkDir: true });
      const before = workDirsOf(project, 'debian12-base');
      const qemuBefore = qemuProcessesMentioning(project.workDir);
      cli = startCli(
        ['build', 'debian12-base', '--release', 'int', '--skip-commit', '--builder', 'chroot'],
        project.dir,
      );
      await cli.until(/base : Install the internet-dependent packages/, 20 * 60_000);
      cli.child.kill('SIGKILL');
      await cli.done;
      // Nothing can clean up after SIGKILL: the image stays mounted on its loop device.
      expect(mountsUnder(project.workDir).length).toBeGreaterThanOrEqual(6);
      expect(loopDevicesBacking(project.workDir)).toHaveLength(1);
      const dry = await runCli(['clean', '--dry-run'], project.dir);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(
        /work-dir \(\+\d+ mounts, 1 loops, \d+ processes\) .*its build \(pid \d+\) is gone +would remove/,
      );
      expect(mountsUnder(project.workDir).length).toBeGreaterThanOrEqual(6);
      const clean = await runCli(['clean'], project.dir);
      expect(clean.code, clean.stdout + clean.stderr).toBe(0);
      expect(clean.stdout).toMatch(/removed/);
      expectNothingLeft(project, before, qemuBefore);
      const again = await runCli(['clean', '--dry-run'], project.dir);
      expect(again.stdout).not.toMatch(/work-dir/);
    },
    30 * 60_000,
  );

  it(
    'SIGTERM while the vanilla disk is being assembled on a loop device',
    async () => {
      // A package list of its own gives this image a vanilla disk that is not cached yet.
      project = await makeProject({
        ownWorkDir: true,
        imageYaml: `name: debian12-base\ndistro: debian\nsuite: bookworm\nvanilla:\n  packages: [less]\n  hooks: ['echo interrupt-test-${Date.now()} > "$1"/etc/osbake-test']\n`,
      });
      const before = workDirsOf(project, 'debian12-base');
      const qemuBefore = qemuProcessesMentioning(project.workDir);
      cli = startCli(['build', 'debian12-base', '--release', 'int', '--skip-commit'], project.dir);
      await cli.until(/copying root file system/, 20 * 60_000);
      expect(loopDevicesBacking(project.workDir).length).toBe(1);
      cli.child.kill('SIGTERM');
      const r = await cli.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/SIGTERM received/);
      expectNothingLeft(project, before, qemuBefore);
      // No half-written cache entry of this build's (another test file may be writing its own).
      const pid = cli.child.pid as number;
      expect(
        readdirSync(join(SHARED_WORK_DIR, 'cache/vanilla')).filter((f) => f.includes(`.partial-${pid}-`)),
      ).toEqual([]);
    },
    30 * 60_000,
  );
});
