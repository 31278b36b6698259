import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
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

  it('derives the SSH command for --debug from the communicator port step', () => {
    expect(sshCommandFromStep('Found port for communicator (SSH, WinRM, etc): 2942.', '/w/build_key')).toBe(
      'ssh -i /w/build_key -p 2942 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1',
    );
    expect(
      sshCommandFromStep('Looking for available port between 5900 and 6000 on 127.0.0.1', 'k'),
    ).toBeUndefined();
  });
});
