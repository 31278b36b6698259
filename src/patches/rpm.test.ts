import { describe, expect, it } from 'vitest';
import { ProcessError, UserError } from '../errors.js';
import { formatPatchList } from './bundle.js';
import { parseOrigins, planRpmPatches } from './rpm.js';
import {
  defaultPlatformId,
  dnfArgv,
  dnfFailure,
  isBerkeleyRpmdb,
  rpmQueryArgv,
  upgradeCommand,
} from './rpm-dnf.js';
import { checkRepos, formatRepoFile, parseRepomd } from './rpm-repo.js';
import { parseUpdateinfo } from './updateinfo.js';

const p = (name: string, version: string, epoch = 0, arch = 'x86_64', release = '1.el8') => ({
  name,
  epoch,
  version,
  release,
  arch,
});

const UPDATEINFO = `<updates>
  <update type="security"><id>RLSA-1</id><severity>Critical</severity><pkglist><collection><name>b</name>
    <package name="openssl-libs" epoch="1" version="1.1.1k" release="1.el8" arch="x86_64"/>
  </collection></pkglist></update>
  <update type="enhancement"><id>RLEA-2</id><pkglist><collection><name>b</name>
    <package name="kernel" version="4.18.0" release="2.el8" arch="x86_64"/>
  </collection></pkglist></update>
</updates>`;

describe('rpm patch plan', () => {
  const installed = [
    p('openssl-libs', '1.1.1g', 1),
    p('kernel', '4.18.0', 0, 'x86_64', '1.el8'),
    p('kernel', '4.18.0', 0, 'x86_64', '0.9.el8'),
    p('bash', '4.4.20'),
  ];
  const downloaded = [
    p('openssl-libs', '1.1.1k', 1),
    p('libnew', '2.0'),
    p('kernel', '4.18.0', 0, 'x86_64', '2.el8'),
  ];
  const origins = new Map([
    ['openssl-libs-1:1.1.1k-1.el8.x86_64', 'baseos'],
    ['kernel-4.18.0-2.el8.x86_64', 'baseos'],
  ]);

  it('lists old → new (newest installed of the same name.arch), origin and advisories, sorted', () => {
    const plan = planRpmPatches(installed, downloaded, origins, parseUpdateinfo(UPDATEINFO));
    expect(plan.patches).toEqual([
      {
        name: 'kernel',
        oldVersion: '4.18.0-1.el8',
        newVersion: '4.18.0-2.el8',
        arch: 'x86_64',
        origin: 'baseos',
        advisories: ['RLEA-2'],
      },
      { name: 'libnew', newVersion: '2.0-1.el8', arch: 'x86_64', origin: 'unknown', advisories: [] },
      {
        name: 'openssl-libs',
        oldVersion: '1:1.1.1g-1.el8',
        newVersion: '1:1.1.1k-1.el8',
        arch: 'x86_64',
        origin: 'baseos',
        advisories: ['RLSA-1'],
      },
    ]);
    expect(plan.advisories).toEqual([
      { id: 'RLEA-2', type: 'enhancement' },
      { id: 'RLSA-1', type: 'security', severity: 'Critical' },
    ]);
    expect([...plan.keep].map(([id, s]) => [id, [...s]])).toEqual([
      ['RLEA-2', ['kernel.x86_64']],
      ['RLSA-1', ['openssl-libs.x86_64']],
    ]);
  });

  it('is empty when dnf downloaded nothing, and PATCHES.txt names the advisories', () => {
    expect(planRpmPatches(installed, [], origins, [])).toEqual({
      patches: [],
      advisories: [],
      keep: new Map(),
    });
    const plan = planRpmPatches(installed, downloaded, origins, parseUpdateinfo(UPDATEINFO));
    const text = formatPatchList({
      id: 'b',
      format: 'rpm',
      distro: 'rocky',
      suite: '8',
      created: '2026-11-26T00:00:00.000Z',
      base: { image: 'rocky8-base', artifact: 'rocky8-base-r-main-12345678' },
      packages: plan.patches,
      advisories: plan.advisories,
    });
    expect(text).toMatch(/^openssl-libs +1:1\.1\.1g-1\.el8 → 1:1\.1\.1k-1\.el8 +baseos +RLSA-1$/m);
    expect(text).toMatch(/^libnew +\(new\) → 2\.0-1\.el8 +unknown$/m);
    expect(text).toMatch(/^# RLSA-1 {2}security \(Critical\)$/m);
  });

  it("turns dnf's GPG check failure into a user error naming the packages", () => {
    const tail = [
      'Public key for beta-1.1-1.noarch.rpm is not installed. Failing package is: beta-1.1-1.noarch',
      ' GPG Keys are configured as: file:///k.asc',
      'Error: GPG check FAILED',
    ];
    const e = dnfFailure(new ProcessError(['dnf'], 1, tail));
    expect(e).toBeInstanceOf(UserError);
    expect(e?.code).toBe('E_PATCH_SIGNATURE');
    expect(e?.message).toMatch(/signature check: beta-1\.1-1\.noarch$/);
    expect(dnfFailure(new ProcessError(['dnf'], 1, ['Error: Unable to find a match']))).toBeUndefined();
    expect(dnfFailure(new Error('x'))).toBeUndefined();
  });

  it('names an unreachable repository and an unresolvable upgrade', () => {
    const unreachable = dnfFailure(
      new ProcessError(['dnf'], 1, [
        "Error: Failed to download metadata for repo 'baseos': Cannot download repomd.xml: All mirrors were tried",
      ]),
    );
    expect([unreachable?.code, unreachable?.message]).toEqual([
      'E_REPO_UNREACHABLE',
      'rpm repository baseos: dnf cannot read its metadata',
    ]);
    const depsolve = dnfFailure(
      new ProcessError(['dnf'], 1, [
        'Error: ',
        ' Problem: cannot install the best update candidate for package beta-1.0-1.noarch',
        '  - nothing provides gamma >= 1.0 needed by beta-1.1-1.noarch',
      ]),
    );
    expect(depsolve?.code).toBe('E_PATCH_DEPSOLVE');
    expect(depsolve?.message).toContain('nothing provides gamma >= 1.0 needed by beta-1.1-1.noarch');
  });

  it('reads repoquery origins, first repository wins', () => {
    const out =
      'alpha\t0\t1.1\t1\tnoarch\tbaseos\nalpha\t0\t1.1\t1\tnoarch\tappstream\nx\t1\t2\t3\tx86_64\tappstream\njunk';
    expect([...parseOrigins(out)]).toEqual([
      ['alpha-1.1-1.noarch', 'baseos'],
      ['x-1:2-3.x86_64', 'appstream'],
    ]);
  });
});

describe('dnf and rpm argv', () => {
  const root = {
    root: '/w/root',
    home: '/w/home',
    reposDir: '/w/repos.d',
    config: '/w/dnf.conf',
    releasever: '8',
    platformId: 'platform:el8',
    repos: [
      { id: 'baseos', baseurl: 'file:///m/baseos/' },
      { id: 'appstream', baseurl: 'http://mirror:8080/appstream/' },
    ],
  };

  it('confines dnf to the installroot, its config and the given repositories', () => {
    expect(dnfArgv(root, upgradeCommand('security', '/w/dl'))).toEqual([
      'dnf',
      '-y',
      '--noplugins',
      '--config=/w/dnf.conf',
      '--installroot=/w/root',
      '--releasever=8',
      '--setopt=reposdir=/w/repos.d',
      '--setopt=cachedir=/var/cache/osbake-dnf',
      '--setopt=install_weak_deps=False',
      '--setopt=skip_if_unavailable=False',
      '--setopt=best=True',
      '--setopt=module_platform_id=platform:el8',
      '--disablerepo=*',
      '--enablerepo=baseos,appstream',
      'upgrade',
      '--downloadonly',
      '--destdir=/w/dl',
      '--security',
    ]);
    expect(defaultPlatformId('8.10')).toBe('platform:el8');
    expect(defaultPlatformId('stream')).toBeUndefined();
    expect(upgradeCommand('all', '/d')).toEqual(['upgrade', '--downloadonly', '--destdir=/d']);
    expect(rpmQueryArgv('/w/root').slice(0, 4)).toEqual([
      'rpm',
      '--root=/w/root',
      '--dbpath=/var/lib/rpm',
      '-qa',
    ]);
  });

  it('writes a repo file without host configuration and refuses bad repositories', () => {
    expect(formatRepoFile(root.repos)).toBe(
      '[baseos]\nname=baseos\nbaseurl=file:///m/baseos/\nenabled=1\ngpgcheck=0\nskip_if_unavailable=0\n\n' +
        '[appstream]\nname=appstream\nbaseurl=http://mirror:8080/appstream/\nenabled=1\ngpgcheck=0\nskip_if_unavailable=0\n',
    );
    expect(() => checkRepos(root.repos)).not.toThrow();
    expect(() => checkRepos([])).toThrow(/no rpm repositories/);
    expect(() => checkRepos([{ id: 'a b', baseurl: 'file:///x' }])).toThrow(/id "a b"/);
    expect(() => checkRepos([...root.repos, root.repos[0] as (typeof root.repos)[0]])).toThrow(/repeated/);
    expect(() => checkRepos([{ id: 'a', baseurl: '/srv/repo' }])).toThrow(/not file:\/\/\/ or http/);
    expect(() => checkRepos([{ id: 'a', baseurl: 'file:///r', gpgkey: 'RPM-GPG-KEY' }])).toThrow(/gpgkey/);
    expect(formatRepoFile([{ id: 'a', baseurl: 'file:///r', gpgkey: 'file:///k.asc' }])).toContain(
      'gpgcheck=1\ngpgkey=file:///k.asc\n',
    );
  });

  it('tells a Berkeley DB rpmdb (Rocky 8) from a sqlite one (Rocky 9)', () => {
    expect(isBerkeleyRpmdb(['Packages', 'Name', 'Providename', '__db.001'])).toBe(true);
    expect(isBerkeleyRpmdb(['rpmdb.sqlite', 'rpmdb.sqlite-shm'])).toBe(false);
    expect(isBerkeleyRpmdb(['Packages', 'rpmdb.sqlite'])).toBe(false);
  });

  it('finds metadata locations in repomd.xml', () => {
    const xml = `<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision>
      <data type="primary"><location href="repodata/abc-primary.xml.gz"/></data>
      <data type="updateinfo"><checksum type="sha256">x</checksum><location href="repodata/def-updateinfo.xml.xz"/></data>
      <data type="modules"><location href="repodata/ghi-modules.yaml.gz"/></data></repomd>`;
    expect(Object.fromEntries(parseRepomd(xml))).toEqual({
      primary: 'repodata/abc-primary.xml.gz',
      updateinfo: 'repodata/def-updateinfo.xml.xz',
      modules: 'repodata/ghi-modules.yaml.gz',
    });
  });
});
