/**
 * A project whose store holds real files (random bytes, real SHA-256 sums, package lists, a patch
 * bundle) recorded the way `osbake build` and `osbake release` record them: images/<image>/
 * manifest.json, manifest.yaml and store/releases/<R>.json. No VM needed: the files are data.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildEntry } from '../../src/config/builds.js';
import { type Release, setReleaseInYaml } from '../../src/config/releases.js';
import { releaseJson } from '../../src/release/run-release.js';
import { git, makeProject, type TempProject } from './helpers.js';

export interface FixtureBuild {
  artifact: string;
  release: string;
  dirty: boolean;
  sha256: string;
  size: number;
  packages: string[][];
  buildTime: number;
}

export interface FixtureStore extends TempProject {
  store: string;
  builds: FixtureBuild[];
  bundle: { id: string; path: string; sha256: string; size: number };
  releases: Record<string, Release>;
  commit: string;
}

/** Write `size` random bytes to file; returns the SHA-256. */
export async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  const chunk = 1024 * 1024;
  for (let left = size; left > 0; left -= chunk) {
    const buf = randomBytes(Math.min(chunk, left));
    hash.update(buf);
    if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  return hash.digest('hex');
}

const BASE_PACKAGES = [
  ['bash', '5.2.15-2+b7', 'amd64'],
  ['coreutils', '9.1-1', 'amd64'],
  ['curl', '7.88.1-10+deb12u7', 'amd64'],
  ['libc6', '2.36-9+deb12u8', 'amd64'],
  ['openssl', '3.0.14-1~deb12u2', 'amd64'],
];

export async function makeFixtureStore(imageBytes = 3 * 1024 * 1024): Promise<FixtureStore> {
  const project = await makeProject();
  const store = join(project.dir, 'store');
  const buildsDir = join(store, 'builds');
  await mkdir(buildsDir, { recursive: true });
  const commit = git(project.dir, 'rev-parse', 'HEAD');
  const short = commit.slice(0, 8);
  const specs = [
    { release: '2026.10', dirty: false, time: 1790000000, packages: BASE_PACKAGES },
    {
      release: '2026.11',
      dirty: false,
      time: 1795000000,
      packages: [
        ...BASE_PACKAGES.filter((p) => p[0] !== 'curl').map((p) =>
          p[0] === 'openssl' ? ['openssl', '3.0.15-1~deb12u1', 'amd64'] : p,
        ),
        ['htop', '3.2.2-2', 'amd64'],
      ],
    },
    {
      release: '2026.11',
      dirty: true,
      time: 1795100000,
      packages: [...BASE_PACKAGES, ['tmux', '3.3a-3', 'amd64']],
    },
  ];
  const builds: FixtureBuild[] = [];
  for (const [i, s] of specs.entries()) {
    const hash = `${short.slice(0, 7)}${i}`;
    const artifact = `debian12-base-${s.release}-main-${hash}${s.dirty ? '-dirty' : ''}`;
    const sha256 = await writeRandomFile(join(buildsDir, `${artifact}.qcow2`), imageBytes);
    await writeFile(join(buildsDir, `${artifact}.qcow2.sha256`), `${sha256}  ${artifact}.qcow2\n`);
    await writeFile(
      join(buildsDir, `${artifact}.packages.tsv`),
      `${s.packages.map((p) => p.join('\t')).join('\n')}\n`,
    );
    builds.push({
      artifact,
      release: s.release,
      dirty: s.dirty,
      sha256,
      size: imageBytes,
      packages: s.packages,
      buildTime: s.time,
    });
  }

  const bundleId = 'debian12-patches-20261120';
  const bundlePath = `repos/Debian12/${bundleId}.tar.zst`;
  await mkdir(join(store, 'repos/Debian12'), { recursive: true });
  const bundleSize = 256 * 1024 + 17;
  const bundleSha = await writeRandomFile(join(store, bundlePath), bundleSize);
  await writeFile(join(store, `${bundlePath}.sha256`), `${bundleSha}  ${bundleId}.tar.zst\n`);
  await writeFile(join(store, `repos/Debian12/${bundleId}.txt`), '# openssl 3.0.14 → 3.0.15\n');

  const entries: BuildEntry[] = builds.map((b, i) => ({
    name: 'debian12-base',
    builder_type: 'qemu',
    build_time: b.buildTime,
    files: [{ name: `${b.artifact}.qcow2`, size: b.size }],
    artifact_id: 'VM',
    packer_run_uuid: `00000000-0000-0000-0000-00000000000${i}`,
    custom_data: {
      release: b.release,
      artifact: b.artifact,
      git_branch: 'main',
      git_commit: commit,
      git_dirty: b.dirty,
      sha256: b.sha256,
      size: b.size,
      package_count: b.packages.length,
      duration_s: 300,
      accelerator: 'tcg',
      osbake_version: '0.1.0',
      ...(i === 1
        ? {
            patch_bundle: {
              id: bundleId,
              path: bundlePath,
              sha256: bundleSha,
              size: bundleSize,
              packages: 1,
            },
          }
        : {}),
    },
  }));
  await writeFile(
    join(project.dir, 'images/debian12-base/manifest.json'),
    `${JSON.stringify({ builds: entries, last_run_uuid: entries.at(-1)?.packer_run_uuid }, null, 2)}\n`,
  );

  const image = (b: FixtureBuild) => ({
    name: 'debian12-base',
    kind: 'image' as const,
    path: `builds/${b.artifact}.qcow2`,
    sha256: b.sha256,
    size: b.size,
    build: b.artifact,
    git_commit: commit,
  });
  const [b0, b1] = builds as [FixtureBuild, FixtureBuild];
  const releases: Record<string, Release> = {
    '2026.10': { date: '2026-10-20', git_commit: commit, artifacts: [image(b0)] },
    '2026.11': {
      date: '2026-11-25',
      git_commit: commit,
      artifacts: [
        image(b1),
        {
          name: bundleId,
          kind: 'patch-bundle',
          path: bundlePath,
          sha256: bundleSha,
          size: bundleSize,
          git_commit: commit,
        },
      ],
    },
  };
  let yaml: string | undefined;
  await mkdir(join(store, 'releases'), { recursive: true });
  for (const [name, r] of Object.entries(releases)) {
    yaml = setReleaseInYaml(yaml, name, r);
    await writeFile(
      join(store, 'releases', `${name}.json`),
      `${JSON.stringify(releaseJson(name, r), null, 2)}\n`,
    );
  }
  await writeFile(join(project.dir, 'manifest.yaml'), yaml ?? '');
  git(project.dir, 'add', '-A');
  git(project.dir, 'commit', '-q', '-m', 'builds and releases');
  return {
    ...project,
    store,
    builds,
    bundle: { id: bundleId, path: bundlePath, sha256: bundleSha, size: bundleSize },
    releases,
    commit,
  };
}
