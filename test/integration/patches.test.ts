/**
 * Security-patch bundles with the real Debian mirror: an image bootstrapped from the plain
 * bookworm suite (so bookworm-security has updates for it), --create-patches, osbake release,
 * a build of that release applying the bundle, and refusals of corrupt bundles. The builds use
 * the chroot builder (the bundle's HTTP server reached from inside the chroot at 127.0.0.1); the
 * Packer path is the same patches role over SSH (build.test.ts runs the role there, without a bundle).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { parse, stringify } from 'yaml';
import { cmd, git, makeProject, runCli, type TempProject } from './helpers.js';

const IMAGE_YAML = `name: debian12-base
description: patch bundle test image (plain bookworm, few packages)
distro: debian
suite: bookworm
`;
// No vanilla.channels here: --create-patches and --release with a bundle bootstrap from the plain
// bookworm suite on their own, so bookworm-security and bookworm-updates have updates for the image.
// A small package set keeps the TCG build short; the bundle still covers the whole base system.
const BASE_DEFAULTS = `---
base_packages: [jq, chrony]
chrony_servers: [2.debian.pool.ntp.org]
nfs_idmap_domain: localdomain
timezone: UTC
osbake_image: unknown
osbake_artifact: unknown
osbake_release: unreleased
osbake_git_commit: unknown
`;

/** The project's public keys as one keyring file for gpgv. */
function keyringOf(projectDir: string): string {
  const out = join(projectDir, '.gnupg-test', 'keys.gpg');
  execFileSync('sh', ['-c', `cat ${join(projectDir, 'keys')}/*.asc | gpg --batch --yes --dearmor -o ${out}`]);
  return out;
}

function readTsv(file: string): Map<string, string> {
  return new Map(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name = '', version = ''] = l.split('\t');
        return [name, version] as const;
      }),
  );
}

describe('Debian security-patch bundles (real mirror, mmdebstrap, Packer, Ansible)', () => {
  let project: TempProject;
  let bundle: { id: string; path: string; sha256: string; packages: number };
  let bundleFile: string;

  // The project signs (osbake keys init): bundles get InRelease/Release.gpg, releases R.json.asc.
  let env: Record<string, string>;
  const keyring = () => keyringOf(project.dir);

  beforeAll(async () => {
    project = await makeProject({
      imageYaml: IMAGE_YAML,
      files: { 'images/debian12-base/ansible/roles/base/defaults/main.yml': BASE_DEFAULTS },
    });
    env = { GNUPGHOME: join(project.dir, '.gnupg-test') };
    const init = await runCli(['keys', 'init', '--uid', 'Patch Test <patch@example.org>'], project.dir, env);
    expect(init.code, init.stderr).toBe(0);
    writeFileSync(join(project.dir, '.gitignore'), '.gnupg-test/\n', { flag: 'a' });
    git(project.dir, 'add', '-A');
    git(project.dir, 'commit', '-q', '-m', 'project signing key');
  }, 60_000);

  afterAll(async () => {
    await project?.cleanup();
  });

  it(
    '--create-patches makes an apt bundle of every newer security/updates package',
    async () => {
      const r = await runCli(
        // No boot test here: the build of the release below boots the patched image.
        ['build', 'debian12-base', '--create-patches', '--builder', 'chroot', '--no-test'],
        project.dir,
        env,
      );
      if (r.code !== 0) console.error(r.stdout, r.stderr);
      expect(r.code).toBe(0);
      const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
      bundle = m.builds[0].custom_data.patch_bundle;
      expect(bundle.path).toMatch(/^repos\/Debian12\/debian12-base-main-[0-9a-f]{8}-patches\.tar\.zst$/);
      expect(bundle.packages).toBeGreaterThan(0);
      bundleFile = join(project.dir, 'store', bundle.path);
      expect(readFileSync(`${bundleFile}.sha256`, 'utf8').split(' ')[0]).toBe(bundle.sha256);

      const dir = await mkdtemp(join(tmpdir(), 'osbake-bundle-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      execFileSync('tar', ['--zstd', '-xf', bundleFile, '-C', dir]);
      const debs = readdirSync(join(dir, 'pool')).filter((f) => f.endsWith('.deb'));
      expect(debs).toHaveLength(bundle.packages);
      expect(readFileSync(join(dir, 'Release'), 'utf8')).toMatch(/^SHA256:\n [0-9a-f]{64} +\d+ Packages$/m);
      // Signed with the project key, as apt reads it: InRelease (clear-signed) and Release.gpg.
      expect(readFileSync(join(dir, 'InRelease'), 'utf8')).toMatch(/^-----BEGIN PGP SIGNED MESSAGE-----/);
      execFileSync('gpgv', ['--keyring', keyring(), join(dir, 'Release.gpg'), join(dir, 'Release')], {
        stdio: 'pipe',
      });
      const b = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
      expect(b.format).toBe('apt');
      expect(b.packages.some((p: { origin: string }) => /security/i.test(p.origin))).toBe(true);
      // Every upgraded package was installed in the image at the old version.
      const installed = readTsv(
        join(project.dir, `store/builds/${m.builds[0].custom_data.artifact}.packages.tsv`),
      );
      for (const p of b.packages.filter((x: { oldVersion?: string }) => x.oldVersion)) {
        expect(installed.get(p.name)).toBe(p.oldVersion);
      }
      expect(readFileSync(join(dir, 'PATCHES.txt'), 'utf8')).toMatch(/→/);
    },
    40 * 60_000,
  );

  it(
    'records the release, then a build of that release applies the bundle alone',
    async () => {
      const rel = await runCli(['release', 'r1'], project.dir, env);
      if (rel.code !== 0) console.error(rel.stdout, rel.stderr);
      expect(rel.code).toBe(0);
      expect(readFileSync(join(project.dir, 'manifest.yaml'), 'utf8')).toContain(bundle.sha256);
      // osbake release commits manifest.yaml itself: the tree is clean for the build that follows.
      expect(git(project.dir, 'log', '-1', '--format=%s')).toBe('recorded release r1');
      expect(git(project.dir, 'status', '--porcelain', '--', 'manifest.yaml')).toBe('');

      const r = await runCli(
        ['build', 'debian12-base', '--release', 'r1', '--builder', 'chroot'],
        project.dir,
        env,
      );
      if (r.code !== 0) console.error(r.stdout, r.stderr);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        /patch bundle .* is signed: apt\/dnf check it inside the build against keys\//,
      );
      expect(r.stderr).toMatch(
        /applying patch bundle .*-patches \(\d+ packages\) from http:\/\/127\.0\.0\.1:\d+\//,
      );
      const m = JSON.parse(readFileSync(join(project.dir, 'images/debian12-base/manifest.json'), 'utf8'));
      const build = m.builds.at(-1);
      expect(build.custom_data.release).toBe('r1');
      expect(build.custom_data.applied_patch_bundle).toMatchObject({ sha256: bundle.sha256 });
      // The image's versions are the bundle's for every package the bundle carries that the image has.
      const dir = await mkdtemp(join(tmpdir(), 'osbake-bundle-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      execFileSync('tar', ['--zstd', '-xf', bundleFile, '-C', dir]);
      const b = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
      const installed = readTsv(join(project.dir, `store/builds/${build.custom_data.artifact}.packages.tsv`));
      let checked = 0;
      for (const p of b.packages) {
        if (installed.has(p.name)) {
          expect(`${p.name} ${installed.get(p.name)}`).toBe(`${p.name} ${p.newVersion}`);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
      // The image booted with the bundle's packages (the new kernel among them) and passed its checks.
      expect(build.custom_data.test).toMatchObject({ passed: true, state: 'running' });
      // apt inside the chroot fetched from the bundle's repository.
      const log = readFileSync(join(project.dir, build.custom_data.log_file), 'utf8');
      // apt asks a flat repository for ./Release, ./Packages.{xz,gz} then the pool's .debs.
      expect(log).toMatch(/"src":"patch-repo","msg":"GET \/(?:\.\/)?Packages(?:\.\w+)? 200"/);
      expect(log).toMatch(/"src":"patch-repo","msg":"GET \/pool\/[^ ]+\.deb 200"/);
      // The role fetched the keys osbake put beside the repository, and apt the signed InRelease.
      expect(log).toMatch(/"src":"patch-repo","msg":"GET \/osbake-keyring\.asc 200"/);
      expect(log).toMatch(/"src":"patch-repo","msg":"GET \/(?:\.\/)?InRelease 200"/);
    },
    55 * 60_000,
  );

  it(
    'a bundle whose Packages was altered after signing fails inside apt, though its record matches',
    async () => {
      // An attacker with write access to the store and manifest.yaml: Packages changed, Release
      // made anew (unsigned), the old Release.gpg kept, InRelease dropped, the bundle repacked
      // and its new checksum recorded. osbake's own checksum passes; apt's signature check fails.
      const dir = await mkdtemp(join(tmpdir(), 'osbake-evil-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      execFileSync('tar', ['--zstd', '-xf', bundleFile, '-C', dir]);
      const packages = readFileSync(join(dir, 'Packages'), 'utf8');
      writeFileSync(join(dir, 'Packages'), packages.replace(/^Description: .*$/m, 'Description: replaced'));
      execFileSync(
        'sh',
        [
          '-c',
          'gzip -9c Packages > Packages.gz && apt-ftparchive release . > ../Release.new && mv ../Release.new Release && rm -f InRelease',
        ],
        { cwd: dir },
      );
      const evil = join(project.dir, 'store', bundle.path);
      const orig = readFileSync(evil);
      const manifest = join(project.dir, 'manifest.yaml');
      const text = readFileSync(manifest, 'utf8');
      try {
        await cmd('sh', ['-c', `tar -C ${dir} -cf - . | zstd -q -19 -o ${evil} -f`]);
        const sha = (await cmd('sha256sum', [evil])).split(' ')[0] as string;
        const size = readFileSync(evil).length;
        const doc = parse(text) as {
          releases: Record<string, { artifacts: { path: string; sha256: string; size: number }[] }>;
        };
        for (const a of doc.releases.r1?.artifacts ?? []) {
          if (a.path === bundle.path) Object.assign(a, { sha256: sha, size });
        }
        writeFileSync(manifest, stringify(doc));
        const r = await runCli(
          ['build', 'debian12-base', '--release', 'r1', '--skip-commit', '--builder', 'chroot'],
          project.dir,
          env,
        );
        expect(r.code).toBe(1);
        expect(r.stderr).not.toMatch(/has sha256 [0-9a-f]{64}, but manifest\.yaml records/);
        expect(r.stderr + r.stdout).toMatch(/BADSIG|signatures were invalid|is not signed/);
      } finally {
        writeFileSync(evil, orig);
        writeFileSync(manifest, text);
      }
    },
    20 * 60_000,
  );

  it(
    'refuses a corrupted bundle and a wrong sha256 before starting a VM',
    async () => {
      const orig = readFileSync(bundleFile);
      const bad = Buffer.from(orig);
      bad[bad.length >> 1] = (bad[bad.length >> 1] ?? 0) ^ 0xff;
      writeFileSync(bundleFile, bad);
      try {
        const r = await runCli(
          ['build', 'debian12-base', '--release', 'r1', '--skip-commit', '--builder', 'chroot'],
          project.dir,
          env,
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/patch bundle .* has sha256 [0-9a-f]{64}, but manifest\.yaml records/);
        expect(r.stderr).not.toMatch(/Starting VM|mounting the image/);
      } finally {
        writeFileSync(bundleFile, orig);
      }
      const manifest = join(project.dir, 'manifest.yaml');
      const text = readFileSync(manifest, 'utf8');
      writeFileSync(manifest, text.replace(bundle.sha256, 'f'.repeat(64)));
      try {
        const r = await runCli(
          ['build', 'debian12-base', '--release', 'r1', '--skip-commit', '--builder', 'chroot'],
          project.dir,
          env,
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/manifest\.yaml records f{64}/);
      } finally {
        writeFileSync(manifest, text);
      }
      expect(existsSync(bundleFile)).toBe(true);
    },
    10 * 60_000,
  );
});
