/**
 * Interrupting a real build leaves nothing behind: no artifact in the store, no manifest entry,
 * no QEMU process, no loop device, no mount, no work directory.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  loopDevicesBacking,
  makeProject,
  mountsUnder,
  qemuProcessesMentioning,
  SHARED_WORK_DIR,
  startCli,
  type TempProject,
} from './helpers.js';

function workDirsOf(image: string): string[] {
  const dir = join(SHARED_WORK_DIR, 'work');
  return existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith(`${image}-`)) : [];
}

function expectNothingLeft(project: TempProject, workBefore: string[], qemuBefore: number[]) {
  const store = join(project.dir, 'store/builds');
  expect(existsSync(store) ? readdirSync(store) : []).toEqual([]);
  expect(existsSync(join(project.dir, 'images/debian12-base/manifest.json'))).toBe(false);
  expect(qemuProcessesMentioning(SHARED_WORK_DIR).filter((p) => !qemuBefore.includes(p))).toEqual([]);
  expect(loopDevicesBacking(SHARED_WORK_DIR)).toEqual([]);
  expect(mountsUnder(SHARED_WORK_DIR)).toEqual([]);
  expect(workDirsOf('debian12-base')).toEqual(workBefore);
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
    'SIGINT during Ansible provisioning',
    async () => {
      project = await makeProject();
      const before = workDirsOf('debian12-base');
      const qemuBefore = qemuProcessesMentioning(SHARED_WORK_DIR);
      cli = startCli(['build', 'debian12-base', '--release', 'int', '--skip-commit'], project.dir);
      await cli.until(/TASK \[base : /, 30 * 60_000);
      expect(qemuProcessesMentioning(SHARED_WORK_DIR).filter((p) => !qemuBefore.includes(p))).toHaveLength(1);
      cli.child.kill('SIGINT');
      const r = await cli.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/SIGINT received/);
      expect(r.stderr).toMatch(/interrupted by SIGINT; cleaned up/);
      expectNothingLeft(project, before, qemuBefore);
    },
    40 * 60_000,
  );

  it(
    'SIGTERM while the vanilla disk is being assembled on a loop device',
    async () => {
      // A package list of its own gives this image a vanilla disk that is not cached yet.
      project = await makeProject({
        imageYaml: `name: debian12-base\ndistro: debian\nsuite: bookworm\nvanilla:\n  packages: [less]\n  hooks: ['echo interrupt-test-${Date.now()} > "$1"/etc/osbake-test']\n`,
      });
      const before = workDirsOf('debian12-base');
      const qemuBefore = qemuProcessesMentioning(SHARED_WORK_DIR);
      cli = startCli(['build', 'debian12-base', '--release', 'int', '--skip-commit'], project.dir);
      await cli.until(/copying root file system/, 20 * 60_000);
      expect(loopDevicesBacking(SHARED_WORK_DIR).length).toBe(1);
      cli.child.kill('SIGTERM');
      const r = await cli.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/SIGTERM received/);
      expectNothingLeft(project, before, qemuBefore);
      expect(
        readdirSync(join(SHARED_WORK_DIR, 'cache/vanilla')).filter((f) => f.includes('.partial')),
      ).toEqual([]);
    },
    30 * 60_000,
  );
});
