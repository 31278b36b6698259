/**
 * A Packer template with a syntax error is refused in preflight, as file:line: message in the
 * image's own folder, before the vanilla disk or a VM (real Packer, packer validate -syntax-only).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
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
    const checks = JSON.parse(r.stdout) as { target: string; check: string; ok: boolean; notes?: string[] }[];
    expect(checks.every((c) => c.ok)).toBe(true);
    // rocky8-base's kickstart makes a disk that boots under BIOS and UEFI: nothing to note.
    expect(checks.find((c) => c.check === 'kickstart ks.cfg')?.notes).toBeUndefined();
    expect(checks.map((c) => `${c.target}: ${c.check}`)).toEqual(
      expect.arrayContaining([
        'debian12-base: packer (qemu)',
        'debian12-base: ansible --syntax-check',
        'rocky8-base: packer (libvirt)',
        'rocky8-base: kickstart ks.cfg',
      ]),
    );
  });

  it('notes what an MBR kickstart lacks for UEFI-only nodes (a note, not a failure)', async () => {
    const ks = readFileSync(join(REPO, 'images/rocky8-base/http/ks.cfg'), 'utf8')
      .replace('--disklabel=gpt', '--disklabel=msdos')
      .replace(/^part \/boot\/efi .*\n/m, '')
      .replace(/^shim-x64\n/m, '');
    const p = await makeProject({ files: {} });
    try {
      await cp(join(REPO, 'images/rocky8-base'), join(p.dir, 'images/rocky8-base'), { recursive: true });
      writeFileSync(join(p.dir, 'images/rocky8-base/http/ks.cfg'), ks);
      const r = await runCli(['validate', 'rocky8-base'], p.dir);
      expect(r.stdout).toMatch(
        /ok {3}rocky8-base: kickstart ks\.cfg\n\s+note: the disk will not boot under UEFI/,
      );
      expect(r.stdout).not.toMatch(/will not boot under BIOS/);
      expect(r.stdout).toMatch(
        /note: the disk will not boot under UEFI \(UEFI-only nodes\): it lacks a GPT disk label \(clearpart --disklabel=gpt\), an EFI System Partition \(part \/boot\/efi --fstype=efi\), shim-x64 in %packages/,
      );
    } finally {
      await p.cleanup();
    }
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
