/**
 * Fixtures for the rpm bundle integration test, all with the real tools: rpmbuild, rpmsign (gpg),
 * createrepo_c, modifyrepo_c, dnf --installroot, and a Berkeley DB rpmdb made with db5.3_load.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const MODULES_YAML = `---
document: modulemd
version: 2
data:
  name: osbtest
  stream: "1"
  version: 20261101000000
  context: 6c81f848
  arch: x86_64
  summary: osbake test module
  description: A module whose packages this repository does not carry.
  license:
    module: [MIT]
  artifacts:
    rpms: [epsilon-0:1.0-1.noarch]
...
`;

/** Tools bound to one scratch directory (`tmp`; gpg keys live in tmp/gnupg). */
export function rpmFixtures(tmp: string) {
  const execFileP = promisify(execFile);
  /** Run a tool asynchronously: the http repository is served from this process. */
  const sh = async (argv: string[], env: Record<string, string> = {}) =>
    (
      await execFileP(argv[0] as string, argv.slice(1), {
        encoding: 'utf8',
        env: { ...process.env, GNUPGHOME: join(tmp, 'gnupg'), ...env },
        timeout: 120_000,
        maxBuffer: 64 << 20,
      })
    ).stdout;

  async function buildRpm(name: string, version: string, requires?: string): Promise<string> {
    const spec = join(tmp, `${name}-${version}.spec`);
    writeFileSync(
      spec,
      [
        `Name: ${name}`,
        `Version: ${version}`,
        'Release: 1',
        `Summary: osbake test package ${name}`,
        'License: MIT',
        'BuildArch: noarch',
        ...(requires ? [`Requires: ${requires}`] : []),
        '%description',
        `${name} ${version}`,
        '%install',
        `mkdir -p %{buildroot}/usr/share/${name}`,
        `echo ${version} > %{buildroot}/usr/share/${name}/version`,
        '%files',
        `/usr/share/${name}/version`,
        '',
      ].join('\n'),
    );
    await sh(['rpmbuild', '--define', `_topdir ${join(tmp, 'rpmbuild')}`, '--quiet', '-bb', spec]);
    return join(tmp, 'rpmbuild/RPMS/noarch', `${name}-${version}-1.noarch.rpm`);
  }

  /** A throwaway signing key in tmp/gnupg, exported as tmp/<name>.asc. */
  async function makeKey(name: string): Promise<string> {
    mkdirSync(join(tmp, 'gnupg'), { recursive: true, mode: 0o700 });
    const uid = `${name} <${name}@osbake.invalid>`;
    await sh([
      'gpg',
      '--batch',
      '--quiet',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--quick-gen-key',
      uid,
      'rsa2048',
      'sign',
      'never',
    ]);
    writeFileSync(
      join(tmp, `${name}.asc`),
      await sh(['gpg', '--batch', '--armor', '--export', `${name}@osbake.invalid`]),
    );
    return `file://${join(tmp, `${name}.asc`)}`;
  }

  const advisory = (id: string, type: string, severity: string | undefined, pkgs: [string, string][]) => `
    <update from="test@osbake.invalid" status="final" type="${type}" version="2">
      <id>${id}</id>
      <title>${type} update for ${pkgs.map((p) => p[0]).join(', ')}</title>
      ${severity ? `<severity>${severity}</severity>` : ''}
      <issued date="2026-11-01 00:00:00"/>
      <references><reference href="https://example.invalid/${id}" id="${id}" type="self" title="${id}"/></references>
      <pkglist><collection short="test"><name>test</name>
        ${pkgs
          .map(
            ([n, v]) =>
              `<package name="${n}" version="${v}" release="1" epoch="0" arch="noarch" src="${n}-${v}-1.src.rpm"><filename>${n}-${v}-1.noarch.rpm</filename></package>`,
          )
          .join('\n      ')}
      </collection></pkglist>
    </update>`;

  async function makeRepo(dir: string, rpms: string[], updateinfo: string, modules?: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    for (const r of rpms) cpSync(r, join(dir, r.split('/').pop() as string));
    await sh(['createrepo_c', '--quiet', dir]);
    writeFileSync(
      join(tmp, 'updateinfo.xml'),
      `<?xml version="1.0" encoding="UTF-8"?>\n<updates>${updateinfo}\n</updates>\n`,
    );
    await sh(['modifyrepo_c', '--mdtype=updateinfo', join(tmp, 'updateinfo.xml'), join(dir, 'repodata')]);
    if (modules) {
      writeFileSync(join(tmp, 'modules.yaml'), modules);
      await sh(['modifyrepo_c', '--mdtype=modules', join(tmp, 'modules.yaml'), join(dir, 'repodata')]);
    }
  }

  /** Real dnf on an image installroot whose rpmdb is at /var/lib/rpm (as on Rocky), only `repos` enabled. */
  async function dnfImage(
    root: string,
    repos: Record<string, string>,
    args: string[],
    gpgkey: string,
  ): Promise<string> {
    const conf = join(tmp, `dnf-${Object.keys(repos).join('-')}`);
    mkdirSync(join(conf, 'repos.d'), { recursive: true });
    writeFileSync(join(conf, '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
    writeFileSync(
      join(conf, 'repos.d/test.repo'),
      Object.entries(repos)
        .map(([id, url]) => `[${id}]\nname=${id}\nbaseurl=${url}\ngpgcheck=1\ngpgkey=${gpgkey}\n`)
        .join('\n'),
    );
    writeFileSync(join(conf, 'dnf.conf'), '[main]\n');
    return sh(
      [
        'dnf',
        '-y',
        '--noplugins',
        `--config=${join(conf, 'dnf.conf')}`,
        `--installroot=${root}`,
        '--releasever=8',
        `--setopt=reposdir=${join(conf, 'repos.d')}`,
        '--setopt=install_weak_deps=False',
        '--disablerepo=*',
        `--enablerepo=${Object.keys(repos).join(',')}`,
        ...args,
      ],
      { HOME: conf },
    );
  }

  /**
   * The image's rpmdb rewritten as Rocky 8 keeps it: a Berkeley DB hash `Packages` (key: header
   * number, little-endian uint32; key 0: the next number), made with db5.3_load from the sqlite rows.
   */
  async function berkeleyRpmdb(image: string, dest: string): Promise<void> {
    const copy = join(tmp, 'rpmdb-copy');
    cpSync(join(image, 'var/lib/rpm'), copy, { recursive: true });
    const rows = (
      await sh([
        'sqlite3',
        '-separator',
        ' ',
        join(copy, 'rpmdb.sqlite'),
        'SELECT hnum, hex(blob) FROM Packages',
      ])
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]);
    const le32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b.toString('hex');
    };
    const esc = (hex: string) => hex.toLowerCase().replace(/(..)/g, '\\$1');
    const next = Math.max(...rows.map(([h]) => Number(h))) + 1;
    const dump = [
      esc(le32(0)),
      esc(le32(next)),
      ...rows.flatMap(([h, blob]) => [esc(le32(Number(h))), esc(blob)]),
    ];
    writeFileSync(join(tmp, 'packages.dump'), `${dump.join('\n')}\n`);
    mkdirSync(dest, { recursive: true });
    await sh(['db5.3_load', '-T', '-t', 'hash', '-f', join(tmp, 'packages.dump'), join(dest, 'Packages')]);
  }

  const installedVersions = async (root: string) =>
    (
      await sh([
        'rpm',
        `--root=${root}`,
        '--dbpath=/var/lib/rpm',
        '-qa',
        '--qf',
        '%{NAME} %{VERSION}-%{RELEASE}\n',
      ])
    )
      .split('\n')
      .filter(Boolean)
      .sort();

  return {
    sh,
    buildRpm,
    makeKey,
    advisory,
    MODULES_YAML,
    makeRepo,
    dnfImage,
    berkeleyRpmdb,
    installedVersions,
  };
}
