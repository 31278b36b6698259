import { describe, expect, it } from 'vitest';
import { ImageConfigSchema, type ImageDefinition } from '../config/image.js';
import { type Project, ProjectConfigSchema } from '../config/project.js';
import { buildDnfBootstrapArgs, checkRockyBootstrap, rockyBootstrapRepoFile } from './rocky-bootstrap.js';

const project = (mirrors: object) =>
  ({ config: ProjectConfigSchema.parse({ mirrors: { rocky: mirrors } }) }) as Project;
const image = {
  name: 'rocky8-base',
  config: ImageConfigSchema.parse({ name: 'rocky8-base', distro: 'rocky', suite: '8.10' }),
} as ImageDefinition;

describe('Rocky vanilla bootstrap', () => {
  it('gives dnf a private config, the release version, no weak deps and the packages', () => {
    expect(
      buildDnfBootstrapArgs({
        root: '/w/root',
        confDir: '/w/dnf',
        releasever: '8.10',
        packages: ['kernel', 'dnf'],
      }),
    ).toEqual([
      'dnf',
      '--assumeyes',
      '--noplugins',
      '--config=/w/dnf/dnf.conf',
      '--installroot=/w/root',
      '--releasever=8.10',
      '--setopt=reposdir=/w/dnf/repos.d',
      '--setopt=cachedir=/w/dnf/cache',
      '--setopt=install_weak_deps=False',
      '--setopt=tsflags=nodocs',
      '--setopt=keepcache=False',
      'install',
      'kernel',
      'dnf',
    ]);
  });

  it('takes BaseOS and AppStream from the configured mirrors, GPG-checked with Rocky key', () => {
    const repo = rockyBootstrapRepoFile(
      project({ baseos: 'http://m/8.10/BaseOS/x86_64/os/', appstream: 'http://m/a/' }),
    );
    expect(repo).toBe(
      [
        '[osbake-baseos]',
        'name=osbake-baseos (osbake bootstrap)',
        'baseurl=http://m/8.10/BaseOS/x86_64/os/',
        'enabled=1',
        'gpgcheck=1',
        'gpgkey=https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-8',
        '',
        '[osbake-appstream]',
        'name=osbake-appstream (osbake bootstrap)',
        'baseurl=http://m/a/',
        'enabled=1',
        'gpgcheck=1',
        'gpgkey=https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-8',
        '',
      ].join('\n'),
    );
  });

  it('refuses before any work without both mirrors', () => {
    expect(() => checkRockyBootstrap(project({ baseos: 'http://m/b/' }), image)).toThrow(
      /needs mirrors\.rocky\.baseos and \.appstream/,
    );
    expect(() =>
      checkRockyBootstrap(project({ baseos: 'http://m/b/', appstream: 'http://m/a/' }), image),
    ).not.toThrow();
  });
});
