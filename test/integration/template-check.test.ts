/**
 * A Packer template with a syntax error is refused in preflight, as file:line: message in the
 * image's own folder, before the vanilla disk or a VM (real Packer, packer validate -syntax-only).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, REPO, runCli, type TempProject } from './helpers.js';

describe('template syntax checked before any work (real packer)', () => {
  let project: TempProject;
  beforeAll(async () => {
    const hcl = readFileSync(join(REPO, 'images/debian12-base/debian12-base.pkr.hcl'), 'utf8');
    project = await makeProject({
      files: {
        'images/debian12-base/debian12-base.pkr.hcl': `${hcl}\nsource "qemu" "broken" {\n  disk_size = \n}\n`,
      },
    });
  });
  afterAll(async () => {
    await project?.cleanup();
  });

  it('says file:line: what is wrong, with the code, and starts nothing', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r', '--builder', 'qemu'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `${project.dir}/images/debian12-base/debian12-base\\.pkr\\.hcl:\\d+: Invalid expression: .*\\[E_TEMPLATE\\]`,
      ),
    );
    expect(r.stderr).toMatch(/build failed at step "preflight"/);
    expect(r.stderr).not.toMatch(/vanilla disk|mmdebstrap|Starting VM/);
    expect(r.stderr).not.toMatch(/template-check/);
  });
});

describe('osbake validate (real packer and ansible, no build)', () => {
  let broken: TempProject;
  beforeAll(async () => {
    broken = await makeProject({
      files: {
        'images/debian12-base/ansible/playbook.yml': '- name: x\n  hosts: all\n  roles: [nosuchrole]\n',
        'images/debian12-base/variables.pkr.hcl': 'variable "x" {\n  type = \n}\n',
      },
    });
  });
  afterAll(async () => {
    await broken?.cleanup();
  });

  it("passes the repository's own images", async () => {
    const r = await runCli(['validate', '--json'], REPO);
    expect(r.code, r.stderr).toBe(0);
    const checks = JSON.parse(r.stdout) as { target: string; check: string; ok: boolean }[];
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(checks.map((c) => `${c.target}: ${c.check}`)).toEqual(
      expect.arrayContaining([
        'debian12-base: packer (qemu)',
        'debian12-base: ansible --syntax-check',
        'rocky8-base: packer (libvirt)',
        'rocky8-base: kickstart ks.cfg',
      ]),
    );
  });

  it('lists every problem of a broken image and fails', async () => {
    const r = await runCli(['validate', 'debian12-base'], broken.dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL debian12-base: packer \(qemu\)\n\s+.*variables\.pkr\.hcl:2: /);
    expect(r.stdout).toMatch(/FAIL debian12-base: ansible --syntax-check/);
    expect(r.stdout).toMatch(/ok {3}debian12-base: image\.yaml/);
    expect(r.stderr).toMatch(/2 of \d+ check\(s\) failed \[E_INVALID\]/);
  });
});
