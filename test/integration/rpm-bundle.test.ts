/**
 * rpm security-patch bundles with the real tools, offline: noarch RPMs built by rpmbuild (1.0 and
 * 1.1; beta 1.1 newly requires gamma), a file:// "baseos" repository with a security advisory and
 * an http:// "appstream" repository with a bugfix advisory and modules.yaml (createrepo_c,
 * modifyrepo_c), an image installroot where dnf installed the 1.0 versions; then bundles made by
 * createRpmBundle (security-only from the rpmdb, all updates from NEVRA lines), unpacked, and
 * applied with `dnf --installroot upgrade` from the bundle alone. Every package is signed by a
 * throwaway key (rpmsign); dnf checks it while the bundle is made and where it is applied.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/artifacts/checksum.js';
import { UserError } from '../../src/errors.js';
import { createFileLogger } from '../../src/log/logger.js';
import { type BundleManifest, unpackBundle } from '../../src/patches/bundle.js';
import { type RepoServer, startRepoServer } from '../../src/patches/repo-server.js';
import { createRpmBundle } from '../../src/patches/rpm.js';
import { parseRepomd } from '../../src/patches/rpm-repo.js';
import { parseUpdateinfo } from '../../src/patches/updateinfo.js';
import { exportPublicKey, generateKey } from '../../src/signing/gpg.js';
import { rpmFixtures } from './rpm-fixtures.js';

let tmp = '';
/** file:// URL of the key that signs every test package; the image's dnf checks it, and so does osbake. */
let signingKey = '';
const log = () => createFileLogger(join(tmp, 'osbake.log'));
const signal = new AbortController().signal;
let t: ReturnType<typeof rpmFixtures>;
describe('rpm security-patch bundles (rpmbuild, createrepo_c, modifyrepo_c, dnf --installroot, offline)', () => {
  let server: RepoServer;
  let baseos = '';
  let appstream = '';
  let image = '';
  let otherKey = '';
  const bundles: Record<string, { file: string; sha256: string; manifest: BundleManifest }> = {};

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'osbake-rpm-'));
    t = rpmFixtures(tmp);
    signingKey = await t.makeKey('packager');
    otherKey = await t.makeKey('stranger');
    const v10: string[] = [];
    for (const n of ['alpha', 'beta', 'gamma', 'delta']) v10.push(await t.buildRpm(n, '1.0'));
    const v11 = [
      await t.buildRpm('alpha', '1.1'),
      await t.buildRpm('beta', '1.1', 'gamma >= 1.0'),
      await t.buildRpm('delta', '1.1'),
    ];
    await t.sh([
      'rpmsign',
      '--define',
      '__gpg /usr/bin/gpg',
      '--define',
      '_gpg_name packager@osbake.invalid',
      '--addsign',
      ...v10,
      ...v11,
    ]);
    const [alpha10, beta10, gamma10, delta10] = v10 as [string, string, string, string];
    const [alpha11, beta11, delta11] = v11 as [string, string, string];
    await t.makeRepo(
      join(tmp, 'mirror/baseos'),
      [alpha10, alpha11, beta10, beta11, gamma10],
      t.advisory('OSB-2026:0001', 'security', 'Important', [
        ['alpha', '1.1'],
        ['beta', '1.1'],
      ]),
    );
    await t.makeRepo(
      join(tmp, 'mirror/appstream'),
      [delta10, delta11],
      t.advisory('OSB-2026:0002', 'bugfix', undefined, [['delta', '1.1']]),
      t.MODULES_YAML,
    );
    server = await startRepoServer(join(tmp, 'mirror/appstream'));
    baseos = `file://${join(tmp, 'mirror/baseos')}/`;
    appstream = `http://127.0.0.1:${server.port}/`;
    // The "image": dnf installs the 1.0 versions offline into an installroot.
    image = join(tmp, 'image');
    await t.dnfImage(
      image,
      { baseos, appstream },
      ['install', 'alpha-1.0', 'beta-1.0', 'delta-1.0'],
      signingKey,
    );
    expect((await t.installedVersions(image)).filter((p) => !p.startsWith('gpg-pubkey '))).toEqual([
      'alpha 1.0-1',
      'beta 1.0-1',
      'delta 1.0-1',
    ]);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    if (tmp) await t.sh(['gpgconf', '--kill', 'gpg-agent']).catch(() => undefined);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const repos = (gpgkey = signingKey) => [
    { id: 'baseos', baseurl: baseos, gpgkey },
    { id: 'appstream', baseurl: appstream, gpgkey },
  ];

  /** createRpmBundle for rocky8-base with this test's repositories; `name` picks the work dir and id. */
  const makeBundle = (
    name: string,
    o: Pick<Parameters<typeof createRpmBundle>[0], 'installed'> &
      Partial<Parameters<typeof createRpmBundle>[0]>,
  ) =>
    createRpmBundle({
      repos: repos(),
      workDir: join(tmp, `work-${name}`),
      id: `${name}-patches`,
      image: 'rocky8-base',
      artifact: 'rocky8-base-r1-main-0123abcd',
      distro: 'rocky',
      suite: '8',
      repoDirName: 'Rocky8',
      log: log(),
      signal,
      ...o,
    });

  it('security-only bundle from the image rpmdb: the advisory upgrades plus the newly needed package', async () => {
    const b = await makeBundle('security', {
      installed: { rpmdb: join(image, 'var/lib/rpm') },
      id: 'rocky8-base-r1-main-0123abcd-patches',
    });
    bundles.security = b;
    expect(b.path).toBe('repos/Rocky8/rocky8-base-r1-main-0123abcd-patches.tar.zst');
    expect(b.sha256).toBe(await sha256File(b.file));
    expect(b.packages).toBe(3);
    expect(b.manifest.format).toBe('rpm');
    expect(b.manifest.packages).toEqual([
      {
        name: 'alpha',
        oldVersion: '1.0-1',
        newVersion: '1.1-1',
        arch: 'noarch',
        origin: 'baseos',
        advisories: ['OSB-2026:0001'],
      },
      {
        name: 'beta',
        oldVersion: '1.0-1',
        newVersion: '1.1-1',
        arch: 'noarch',
        origin: 'baseos',
        advisories: ['OSB-2026:0001'],
      },
      { name: 'gamma', newVersion: '1.0-1', arch: 'noarch', origin: 'baseos', advisories: [] },
    ]);
    expect(b.manifest.advisories).toEqual([{ id: 'OSB-2026:0001', type: 'security', severity: 'Important' }]);

    // The packed contents: exactly those rpms, repodata with the filtered updateinfo and the modules.
    const dir = join(tmp, 'unpacked-security');
    mkdirSync(dir);
    await t.sh(['tar', '--zstd', '-xf', b.file, '-C', dir]);
    expect(readdirSync(join(dir, 'Packages')).sort()).toEqual([
      'alpha-1.1-1.noarch.rpm',
      'beta-1.1-1.noarch.rpm',
      'gamma-1.0-1.noarch.rpm',
    ]);
    const md = parseRepomd(readFileSync(join(dir, 'repodata/repomd.xml'), 'utf8'));
    expect([...md.keys()].sort()).toEqual(['filelists', 'modules', 'other', 'primary', 'updateinfo']);
    const ui = parseUpdateinfo(
      gunzipSync(readFileSync(join(dir, md.get('updateinfo') as string))).toString(),
    );
    expect(ui.map((a) => [a.id, a.type, a.packages.map((p) => p.name)])).toEqual([
      ['OSB-2026:0001', 'security', ['alpha', 'beta']],
    ]);
    expect(gunzipSync(readFileSync(join(dir, md.get('modules') as string))).toString()).toContain(
      'name: osbtest',
    );
    expect(JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'))).toEqual(b.manifest);
    const list = readFileSync(join(dir, 'PATCHES.txt'), 'utf8');
    expect(list).toMatch(/^alpha +1\.0-1 → 1\.1-1 +baseos +OSB-2026:0001$/m);
    expect(list).toMatch(/^gamma +\(new\) → 1\.0-1 +baseos$/m);
    expect(list).toMatch(/^# OSB-2026:0001 {2}security \(Important\)$/m);
    expect(list).not.toContain('delta');
  }, 120_000);

  it('a Berkeley DB rpmdb (as Rocky 8 has) is converted and gives the same bundle', async () => {
    const bdb = join(tmp, 'rpmdb-bdb');
    await t.berkeleyRpmdb(image, bdb);
    expect(readdirSync(bdb)).toEqual(['Packages']);
    const b = await makeBundle('bdb', { installed: { rpmdb: bdb } });
    expect(b.manifest.packages).toEqual(bundles.security?.manifest.packages);
    expect(readFileSync(join(tmp, 'osbake.log'), 'utf8')).toMatch(
      /Converting database from bdb_ro to sqlite/,
    );
  }, 60_000);

  it('all-updates bundle from the NEVRA list also carries the bugfix from the http repository', async () => {
    const nevra = (
      await t.sh(['rpm', `--root=${image}`, '--dbpath=/var/lib/rpm', '-qa', '--qf', '%{NEVRA}\n'])
    ).split('\n');
    const b = await makeBundle('all', { installed: { nevra }, policy: 'all' });
    bundles.all = b;
    expect(
      b.manifest.packages.map(
        (p) => `${p.name} ${p.oldVersion ?? '-'} ${p.newVersion} ${p.origin} ${p.advisories}`,
      ),
    ).toEqual([
      'alpha 1.0-1 1.1-1 baseos OSB-2026:0001',
      'beta 1.0-1 1.1-1 baseos OSB-2026:0001',
      'delta 1.0-1 1.1-1 appstream OSB-2026:0002',
      'gamma - 1.0-1 baseos ',
    ]);
    expect(b.manifest.advisories?.map((a) => `${a.id} ${a.type}`)).toEqual([
      'OSB-2026:0001 security',
      'OSB-2026:0002 bugfix',
    ]);
  }, 120_000);

  it.each(['security', 'all'])(
    'the unpacked %s bundle alone upgrades a copy of the image with dnf, offline',
    async (kind) => {
      const b = bundles[kind];
      if (!b) throw new Error(`no ${kind} bundle (earlier test failed)`);
      const dest = join(tmp, `repo-${kind}`);
      const m = await unpackBundle(b.file, b.sha256, dest, log(), signal);
      expect(m).toEqual(b.manifest);
      const root = join(tmp, `image-${kind}`);
      cpSync(image, root, { recursive: true });
      const bundleRepo = { bundle: `file://${dest}/` };
      // dnf sees the bundle's advisories before the upgrade...
      const listed = await t.dnfImage(
        root,
        bundleRepo,
        ['-q', 'updateinfo', 'list', '--updates'],
        signingKey,
      );
      for (const a of m.advisories ?? []) expect(listed).toContain(a.id);
      await t.dnfImage(root, bundleRepo, ['upgrade'], signingKey);
      // ...and afterwards every package is at the bundle's version.
      const expected = new Map(m.packages.map((p) => [p.name, p.newVersion]));
      const after = await t.installedVersions(root);
      for (const [name, version] of expected) expect(after).toContain(`${name} ${version}`);
      expect(after).toContain(kind === 'security' ? 'delta 1.0-1' : 'delta 1.1-1');
      expect(readFileSync(join(root, 'usr/share/beta/version'), 'utf8').trim()).toBe('1.1');
      expect(await t.dnfImage(root, bundleRepo, ['-q', 'check-update'], signingKey)).toBe('');
    },
    120_000,
  );

  /**
   * What a libvirt build does inside the VM, run against a copy of the image's installroot: the
   * role copies the unpacked bundle (patch_repo_dir) to the "guest" directory, writes the repo
   * file and runs dnf (here confined to the installroot by patch_dnf).
   */
  async function runPatchesRole(repo: string, name: string) {
    const root = join(tmp, `image-${name}`);
    cpSync(image, root, { recursive: true });
    const guest = join(tmp, `${name}-guest`);
    const reposDir = join(guest, 'yum.repos.d');
    mkdirSync(reposDir, { recursive: true });
    writeFileSync(join(guest, 'dnf.conf'), '[main]\n');
    writeFileSync(join(guest, '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
    const dnf = [
      'dnf --noplugins',
      `--config=${join(guest, 'dnf.conf')}`,
      `--installroot=${root}`,
      '--releasever=8',
      `--setopt=reposdir=${reposDir}`,
      '--setopt=install_weak_deps=False',
    ].join(' ');
    const vars = {
      patch_repo_dir: repo,
      patch_repo_guest_dir: join(guest, 'var/tmp/osbake-patch-repo'),
      patch_repos_dir: reposDir,
      patch_dnf: dnf,
    };
    const play = join(tmp, `${name}-play.yml`);
    writeFileSync(
      play,
      [
        '- hosts: localhost',
        '  connection: local',
        '  gather_facts: false',
        `  vars: ${JSON.stringify(vars)}`,
        `  environment: { HOME: ${JSON.stringify(guest)} }`,
        '  roles: [patches]',
        '',
      ].join('\n'),
    );
    const out = await t
      .sh(['ansible-playbook', '-i', 'localhost,', play], {
        ANSIBLE_ROLES_PATH: join(process.cwd(), 'images/rocky8-base/ansible/roles'),
        ANSIBLE_NOCOLOR: '1',
      })
      .catch((err: { stdout?: string; message: string }) => `${err.stdout ?? ''}\n${err.message}`);
    return { out, root, guest, reposDir };
  }

  it("rocky8-base's patches role (real Ansible) copies the bundle in and upgrades from it alone", async () => {
    const b = bundles.security;
    if (!b) throw new Error('no security bundle (earlier test failed)');
    const repo = join(tmp, 'role-bundle');
    const m = await unpackBundle(b.file, b.sha256, repo, log(), signal);
    const { out, root, guest, reposDir } = await runPatchesRole(repo, 'role');
    expect(out).toMatch(/failed=0/);
    expect(readdirSync(join(guest, 'var/tmp/osbake-patch-repo/Packages')).sort()).toEqual(
      readdirSync(join(repo, 'Packages')).sort(),
    );
    const repoFile = readFileSync(join(reposDir, 'osbake-patches.repo'), 'utf8');
    expect(repoFile).toContain(`baseurl=file://${join(guest, 'var/tmp/osbake-patch-repo')}\n`);
    expect(repoFile).toContain('repo_gpgcheck=0');
    const after = await t.installedVersions(root);
    for (const p of m.packages) expect(after).toContain(`${p.name} ${p.newVersion}`);
    expect(after).toContain('delta 1.0-1');
  }, 120_000);

  it('a signed bundle (repomd.xml.asc): dnf checks it (repo_gpgcheck=1) and refuses it once repomd.xml was altered', async () => {
    const home = join(tmp, 'project-gnupg');
    const fingerprint = await generateKey(home, 'Project Releases <rel@osbake.invalid>', '1y', log());
    const b = await makeBundle('signedrepo', {
      installed: { rpmdb: join(image, 'var/lib/rpm') },
      signingKey: { fingerprint, home },
    });
    const repo = join(tmp, 'signed-bundle');
    const m = await unpackBundle(b.file, b.sha256, repo, log(), signal);
    expect(m.packages.length).toBeGreaterThan(0);
    expect(readFileSync(join(repo, 'repodata/repomd.xml.asc'), 'utf8')).toMatch(/BEGIN PGP SIGNATURE/);
    // What osbake's patch-source step puts beside a signed bundle: the project's keys/.
    writeFileSync(join(repo, 'osbake-keyring.asc'), await exportPublicKey(home, fingerprint, log()));
    const good = await runPatchesRole(repo, 'signed');
    expect(good.out).toMatch(/failed=0/);
    const repoFile = readFileSync(join(good.reposDir, 'osbake-patches.repo'), 'utf8');
    expect(repoFile).toContain('repo_gpgcheck=1');
    expect(repoFile).toMatch(/gpgkey=file:\/\/.*\/osbake-keyring\.asc/);
    const upgraded = await t.installedVersions(good.root);
    for (const p of m.packages) expect(upgraded).toContain(`${p.name} ${p.newVersion}`);

    // Altered after signing (the checksum osbake checks would be the attacker's): dnf refuses it.
    const altered = join(tmp, 'altered-bundle');
    cpSync(repo, altered, { recursive: true });
    const repomd = join(altered, 'repodata/repomd.xml');
    writeFileSync(repomd, readFileSync(repomd, 'utf8').replace('<revision>', '<revision>9'));
    const bad = await runPatchesRole(altered, 'altered');
    expect(bad.out).toMatch(/failed=1/);
    expect(bad.out).toMatch(/GPG|signature/i);
    const untouched = await t.installedVersions(bad.root);
    for (const p of m.packages) expect(untouched).not.toContain(`${p.name} ${p.newVersion}`);
  }, 180_000);

  it('an image that is up to date gets an empty bundle', async () => {
    const b = await makeBundle('none', {
      installed: { rpmdb: join(tmp, 'image-all/var/lib/rpm') },
      artifact: 'rocky8-base-r2-main-0123abcd',
      policy: 'all',
    });
    expect(b.packages).toBe(0);
    expect(b.manifest.packages).toEqual([]);
    expect(b.manifest.advisories).toEqual([]);
    const m = await unpackBundle(b.file, b.sha256, join(tmp, 'repo-none'), log(), signal);
    expect(readdirSync(join(tmp, 'repo-none/Packages'))).toEqual([]);
    expect(m.id).toBe('none-patches');
  }, 60_000);

  it('refuses packages that are not signed by the repository key', async () => {
    // From NEVRA lines the installroot trusts no key but the repositories' gpgkey (an image's rpmdb
    // would also bring the keys the image trusts, as dnf on the image would).
    const nevra = (
      await t.sh(['rpm', `--root=${image}`, '--dbpath=/var/lib/rpm', '-qa', '--qf', '%{NEVRA}\n'])
    ).split('\n');
    const err = await makeBundle('badkey', { installed: { nevra }, repos: repos(otherKey) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('E_PATCH_SIGNATURE');
    expect((err as UserError).message).toMatch(/signature check: .*alpha-1\.1-1\.noarch/);
  }, 60_000);

  it('unpackBundle refuses a corrupted bundle, a wrong sha256 and a bundle tar cannot read', async () => {
    const b = bundles.security;
    if (!b) throw new Error('no bundle (earlier test failed)');
    const refused = async (file: string, sha: string) => {
      const err = await unpackBundle(file, sha, join(tmp, 'refused'), log(), signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      return err as UserError;
    };
    const bad = join(tmp, 'corrupt.tar.zst');
    const data = Buffer.from(await readFile(b.file));
    data[data.length >> 1] = (data[data.length >> 1] ?? 0) ^ 0xff;
    writeFileSync(bad, data);
    const e1 = await refused(bad, b.sha256);
    expect(e1.code).toBe('E_BUNDLE_CHECKSUM');
    expect(e1.message).toMatch(/has sha256 [0-9a-f]{64}, but manifest\.yaml records/);
    expect((await refused(b.file, 'f'.repeat(64))).code).toBe('E_BUNDLE_CHECKSUM');
    // A damaged file whose recorded sha256 matches it (recorded after the damage) still fails to unpack.
    const cut = join(tmp, 'truncated.tar.zst');
    cpSync(b.file, cut);
    truncateSync(cut, Math.floor(data.length / 2));
    expect((await refused(cut, await sha256File(cut))).code).toBe('E_BUNDLE_CORRUPT');
  }, 60_000);
});
