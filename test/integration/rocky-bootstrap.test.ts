/**
 * The Rocky vanilla root of the chroot builder, with the real dnf (Debian's dnf 4.14 drives an
 * installroot as Rocky's does): osbake's repo file for the configured mirrors, GPG checking, the
 * release version, then the first-boot units, no host keys and the boot loader links. No Rocky
 * repository is reachable here, so the mirrors are local repositories of signed test RPMs (one
 * of them playing the kernel); the real package set is validated only statically (README).
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Project, ProjectConfigSchema } from '../../src/config/project.js';
import {
  dnfInstallRoot,
  finishRockyRoot,
  rockyBootstrapRepoFile,
} from '../../src/distros/rocky-bootstrap.js';
import { VANILLA_OVERLAY } from '../../src/distros/vanilla-overlay.js';
import { ProcessError } from '../../src/errors.js';
import { createNullLogger } from '../../src/log/logger.js';
import { rpmFixtures } from './rpm-fixtures.js';

describe('Rocky vanilla root: dnf --installroot from the configured mirrors (real dnf)', () => {
  let tmp = '';
  let t: ReturnType<typeof rpmFixtures>;
  let project: Project;
  const log = createNullLogger();
  const signal = new AbortController().signal;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'osbake-rocky-root-'));
    t = rpmFixtures(tmp);
    const key = await t.makeKey('rocky');
    await t.makeKey('stranger');
    const base = [await t.buildRpm('osbake-test-base', '1.0'), await t.buildRpm('osbake-test-tools', '2.0')];
    const app = [await t.buildRpm('osbake-test-app', '3.0', 'osbake-test-base')];
    await t.sh([
      'rpmsign',
      '--define',
      '__gpg /usr/bin/gpg',
      '--define',
      '_gpg_name rocky@osbake.invalid',
      '--addsign',
      ...base,
      ...app,
    ]);
    const unsigned = await t.buildRpm('osbake-test-unsigned', '1.0');
    await t.makeRepo(join(tmp, 'mirror/baseos'), [...base, unsigned], '');
    await t.makeRepo(join(tmp, 'mirror/appstream'), app, '');
    project = {
      config: ProjectConfigSchema.parse({
        mirrors: {
          rocky: {
            baseos: `file://${join(tmp, 'mirror/baseos')}`,
            appstream: `file://${join(tmp, 'mirror/appstream')}`,
            gpgkey: key,
          },
        },
      }),
    } as Project;
  }, 120_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('installs from both mirrors with dependencies, the rpmdb at /var/lib/rpm', async () => {
    const root = join(tmp, 'root');
    await dnfInstallRoot({
      root,
      confDir: join(tmp, 'dnf'),
      repoFile: rockyBootstrapRepoFile(project),
      releasever: '8.10',
      packages: ['osbake-test-app', 'osbake-test-tools'],
      log,
      signal,
    });
    expect(await t.installedVersions(root)).toEqual(
      ['gpg-pubkey', 'osbake-test-app 3.0-1', 'osbake-test-base 1.0-1', 'osbake-test-tools 2.0-1'].map((x) =>
        expect.stringContaining(x),
      ),
    );
    expect(readFileSync(join(root, 'usr/share/osbake-test-app/version'), 'utf8')).toBe('3.0\n');
    expect(existsSync(join(root, 'var/lib/rpm'))).toBe(true);
  }, 120_000);

  it('refuses a package that is not signed by the configured key', async () => {
    const err = await dnfInstallRoot({
      root: join(tmp, 'root-unsigned'),
      confDir: join(tmp, 'dnf-unsigned'),
      repoFile: rockyBootstrapRepoFile(project),
      releasever: '8.10',
      packages: ['osbake-test-unsigned'],
      log,
      signal,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).outputTail.join('\n')).toMatch(/not signed|GPG check FAILED|public key/i);
  }, 120_000);

  it('finishes the root: first-boot units enabled, no host keys, empty machine-id, kernel links, relabel', async () => {
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'boot'), { recursive: true });
    mkdirSync(join(root, 'etc/ssh'), { recursive: true });
    writeFileSync(join(root, 'boot/vmlinuz-4.18.0-553.el8_10.x86_64'), 'kernel');
    writeFileSync(join(root, 'boot/vmlinuz-0-rescue-abc'), 'rescue');
    writeFileSync(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'secret');
    await finishRockyRoot({
      root,
      overlay: VANILLA_OVERLAY,
      services: ['osbake-ssh-hostkeys.service', 'osbake-fwcfg-keys.service'],
      log,
      signal,
    });
    // systemctl --root writes absolute links (valid inside the image).
    expect(
      readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/osbake-fwcfg-keys.service')),
    ).toBe('/etc/systemd/system/osbake-fwcfg-keys.service');
    expect(existsSync(join(root, 'etc/systemd/network'))).toBe(false);
    expect(existsSync(join(root, 'etc/ssh/ssh_host_ed25519_key'))).toBe(false);
    expect(readFileSync(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    expect(readFileSync(join(root, 'etc/dracut.conf.d/osbake-generic.conf'), 'utf8')).toBe('hostonly="no"\n');
    expect(readlinkSync(join(root, 'vmlinuz'))).toBe('boot/vmlinuz-4.18.0-553.el8_10.x86_64');
    expect(readlinkSync(join(root, 'initrd.img'))).toBe('boot/initramfs-4.18.0-553.el8_10.x86_64.img');
    expect(existsSync(join(root, '.autorelabel'))).toBe(true);
  }, 60_000);
});
