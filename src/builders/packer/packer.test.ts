import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildPackerArgs,
  needsRequiredPlugins,
  parsePackerVersion,
  sshCommandFromStep,
  stageTemplate,
} from './packer.js';

describe('packer adapter', () => {
  it('builds the exact argv, variables sorted', () => {
    expect(
      buildPackerArgs({
        templateDir: '/w/template',
        vars: { vm_name: 'x.qcow2', cpus: 2, accelerator: 'tcg' },
      }),
    ).toEqual([
      'packer',
      'build',
      '-machine-readable',
      '-color=false',
      '-force',
      '-on-error=cleanup',
      '-var',
      'accelerator=tcg',
      '-var',
      'cpus=2',
      '-var',
      'vm_name=x.qcow2',
      '/w/template',
    ]);
  });

  it('uses -debug (human UI, which can pause) and -on-error=ask for --debug', () => {
    const argv = buildPackerArgs({ templateDir: 't', vars: {}, debug: true, onError: 'ask' });
    expect(argv).toEqual(['packer', 'build', '-debug', '-color=false', '-force', '-on-error=ask', 't']);
  });

  it.each([
    ['Packer v1.6.6', { major: 1, minor: 6, patch: 6 }, false],
    ['Packer v1.14.2\n\nYour version of Packer is out of date!', { major: 1, minor: 14, patch: 2 }, true],
    ['1.7.0', { major: 1, minor: 7, patch: 0 }, true],
  ])('version %j', (out, v, plugins) => {
    const parsed = parsePackerVersion(out);
    expect(parsed).toMatchObject(v);
    expect(needsRequiredPlugins(parsed as NonNullable<typeof parsed>)).toBe(plugins);
  });

  it('stages the template without manifest.json, adding required_plugins only for Packer >= 1.7', async () => {
    const src = await mkdtemp(join(tmpdir(), 'osbake-tpl-'));
    await writeFile(join(src, 'a.pkr.hcl'), '');
    await writeFile(join(src, 'manifest.json'), '{}');
    await mkdir(join(src, 'ansible'));
    await writeFile(join(src, 'ansible/playbook.yml'), '');
    const d1 = join(src, '..', `${src.split('/').pop()}-16`);
    await stageTemplate(src, d1, { major: 1, minor: 6, patch: 6, text: '1.6.6' });
    expect((await readdir(d1)).sort()).toEqual(['a.pkr.hcl', 'ansible']);
    const d2 = join(src, '..', `${src.split('/').pop()}-114`);
    await stageTemplate(src, d2, { major: 1, minor: 14, patch: 0, text: '1.14.0' });
    expect((await readdir(d2)).sort()).toEqual(['a.pkr.hcl', 'ansible', 'osbake-plugins.pkr.hcl']);
  });

  it('stages shared files plus builders/<type>.pkr.hcl, and the build key for the kickstart', async () => {
    const src = await mkdtemp(join(tmpdir(), 'osbake-tpl-'));
    await writeFile(join(src, 'variables.pkr.hcl'), '');
    await mkdir(join(src, 'builders'));
    await writeFile(join(src, 'builders/qemu.pkr.hcl'), 'source "qemu" "x" {}');
    await writeFile(join(src, 'builders/libvirt.pkr.hcl'), 'source "libvirt" "x" {}');
    await mkdir(join(src, 'http'));
    await writeFile(join(src, 'http/ks.cfg'), '');
    await writeFile(join(src, 'key.pub'), 'ssh-ed25519 AAAA test');
    const v16 = { major: 1, minor: 6, patch: 6, text: '1.6.6' };
    const q = `${src}-q`;
    await stageTemplate(src, q, v16, { builder: 'qemu', publicKeyFile: join(src, 'key.pub') });
    expect((await readdir(q)).sort()).toEqual([
      'http',
      'key.pub',
      'osbake-builder-qemu.pkr.hcl',
      'variables.pkr.hcl',
    ]);
    expect(await readFile(join(q, 'http/osbake_authorized_keys'), 'utf8')).toBe('ssh-ed25519 AAAA test');
    const l = `${src}-l`;
    await stageTemplate(src, l, { major: 1, minor: 14, patch: 0, text: '1.14.0' }, { builder: 'libvirt' });
    expect((await readdir(l)).sort()).toEqual([
      'http',
      'key.pub',
      'osbake-builder-libvirt.pkr.hcl',
      'osbake-plugins.pkr.hcl',
      'variables.pkr.hcl',
    ]);
    expect(await readFile(join(l, 'osbake-plugins.pkr.hcl'), 'utf8')).toContain(
      'github.com/thomasklein94/libvirt',
    );
    expect(await readFile(join(l, 'osbake-plugins.pkr.hcl'), 'utf8')).not.toContain('hashicorp/qemu');
  });

  it('refuses a builder the template has no variant for', async () => {
    const src = await mkdtemp(join(tmpdir(), 'osbake-tpl-'));
    await writeFile(join(src, 'a.pkr.hcl'), '');
    await expect(
      stageTemplate(
        src,
        `${src}-x`,
        { major: 1, minor: 14, patch: 0, text: '1.14.0' },
        { builder: 'libvirt' },
      ),
    ).rejects.toThrow(/has no libvirt variant \(builders\/libvirt.pkr.hcl\)/);
  });

  it('derives the SSH command for --debug from the communicator port step', () => {
    expect(sshCommandFromStep('Found port for communicator (SSH, WinRM, etc): 2942.', '/w/build_key')).toBe(
      'ssh -i /w/build_key -p 2942 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1',
    );
    expect(
      sshCommandFromStep('Looking for available port between 5900 and 6000 on 127.0.0.1', 'k'),
    ).toBeUndefined();
  });
});
