/** osbake build usb-installer: the user errors before any work is done (no VM, no mmdebstrap). */
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git, makeProject, REPO, runCli, type TempProject } from '../integration/helpers.js';

describe('osbake build usb-installer (errors)', () => {
  let project: TempProject;
  beforeAll(async () => {
    project = await makeProject();
    await cp(join(REPO, 'images/usb-installer'), join(project.dir, 'images/usb-installer'), {
      recursive: true,
      filter: (p) => !p.endsWith('manifest.json'),
    });
    await writeFile(
      join(project.dir, 'manifest.yaml'),
      [
        'releases:',
        '  r1:',
        '    date: "2026-11-26"',
        `    git_commit: ${'a'.repeat(40)}`,
        '    artifacts:',
        '      - name: rocky8-base',
        '        kind: image',
        '        path: builds/rocky8-base-r1-main-00000000.qcow2',
        `        sha256: ${'b'.repeat(64)}`,
        '        size: 1',
        '',
      ].join('\n'),
    );
    git(project.dir, 'add', '-A');
    git(project.dir, 'commit', '-q', '-m', 'installer');
  });
  afterAll(async () => {
    await project.cleanup();
  });

  it('documents --package with an example', async () => {
    const r = await runCli(['build', '--help'], project.dir);
    expect(r.stdout).toContain('--package <file>');
    expect(r.stdout).toContain('osbake build usb-installer --release 2026.11 --package');
  });

  it('refuses --package for a Packer image', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r1', '--package', 'x'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'osbake: error: --package is for installer images; debian12-base is a disk image (image.yaml kind: image) [E_USAGE]\n' +
        'hint: e.g. osbake build usb-installer --release 2026.11 --package site.tar.gz\n',
    );
  });

  it('refuses a --package file that does not exist before any work', async () => {
    const r = await runCli(
      ['build', 'usb-installer', '--release', 'r1', '--package', 'no-such.tar'],
      project.dir,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/osbake: error: --package .*no-such\.tar does not exist \[E_NO_FILE\]/);
    expect(r.stderr).not.toMatch(/building/);
  });

  it('names the known releases for an unknown one', async () => {
    const r = await runCli(['build', 'usb-installer', '--release', 'r9'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /osbake: error: checking inputs, tools and accelerator: no release "r9" in .*manifest\.yaml/,
    );
    expect(r.stderr).toMatch(/hint: known releases: r1/);
  });

  it('says which images release R has when the payload image is not among them', async () => {
    const r = await runCli(['build', 'usb-installer', '--release', 'r1'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /osbake: error: .*release r1 has no image debian12-base to put on the installer/,
    );
    expect(r.stderr).toMatch(/hint: release r1 has: rocky8-base/);
  });
});
