import { describe, expect, it } from 'vitest';
import type { BuildEntry } from '../config/builds.js';
import type { Release, ReleaseArtifact } from '../config/releases.js';
import { UserError } from '../errors.js';
import {
  type ImageBuilds,
  imageArtifact,
  latestCleanBuild,
  listBundles,
  type PatchChoice,
  planRelease,
} from './plan.js';

const hex = (c: string, n: number) => c.repeat(n);

interface B {
  art: string;
  t: number;
  release?: string;
  dirty?: boolean;
  bundle?: string;
}

function build(b: B): BuildEntry {
  return {
    name: 'qemu.debian12-base',
    builder_type: 'qemu',
    build_time: b.t,
    files: [{ name: `${b.art}.qcow2`, size: b.t }],
    artifact_id: 'VM',
    packer_run_uuid: `uuid-${b.art}`,
    custom_data: {
      ...(b.release ? { release: b.release } : {}),
      artifact: b.art,
      git_branch: 'main',
      git_commit: hex('1', 40),
      git_dirty: Boolean(b.dirty),
      sha256: hex(String(b.t % 10), 64),
      size: b.t,
      package_count: 1,
      duration_s: 1,
      accelerator: 'tcg',
      osbake_version: '0.1.0',
      ...(b.bundle
        ? {
            patch_bundle: {
              id: b.bundle,
              path: `repos/Debian12/${b.bundle}.tar.zst`,
              sha256: hex('e', 64),
              size: 99,
              packages: 3,
            },
          }
        : {}),
    },
  };
}

function images(spec: Record<string, B[]>): ImageBuilds[] {
  return Object.entries(spec).map(([image, bs]) => ({
    image,
    file: `images/${image}/manifest.json`,
    builds: bs.map(build),
  }));
}

const fixture = images({
  a: [
    { art: 'a-r1-main-1', t: 100, release: 'r1' },
    { art: 'a-r1-main-2', t: 300, release: 'r1' },
    { art: 'a-r1-main-3-dirty', t: 400, release: 'r1', dirty: true },
    { art: 'a-r2-main-4', t: 500, release: 'r2', bundle: 'p-new' },
    { art: 'a-r1-main-0', t: 50, release: 'r1', bundle: 'p-old' },
  ],
  b: [{ art: 'b-r1-main-1', t: 200, release: 'r1' }],
  c: [{ art: 'c-r1-main-1-dirty', t: 200, release: 'r1', dirty: true }],
});

const artifactOf = (image: string, art: string, t: number): ReleaseArtifact =>
  imageArtifact(image, build({ art, t, release: 'r1' }));

const bundleArtifact = (id: string): ReleaseArtifact => ({
  name: id,
  kind: 'patch-bundle',
  path: `repos/Debian12/${id}.tar.zst`,
  sha256: hex('e', 64),
  size: 99,
  git_commit: hex('1', 40),
});

const facts = (existing?: Release) => ({
  images: fixture,
  existing,
  date: '2026-11-25',
  gitCommit: hex('f', 40),
});
const req = (patches: PatchChoice = { mode: 'newest' }, force = false, release = 'r1') => ({
  release,
  patches,
  force,
});

describe('latestCleanBuild', () => {
  it.each([
    ['r1', 'a-r1-main-2'],
    ['r2', 'a-r2-main-4'],
    ['r3', undefined],
  ])('release %s -> %s', (release, art) => {
    expect(latestCleanBuild(fixture[0]?.builds ?? [], release)?.custom_data.artifact).toBe(art);
  });

  it('takes the later entry on equal build times', () => {
    const bs = [build({ art: 'x1', t: 5, release: 'r' }), build({ art: 'x2', t: 5, release: 'r' })];
    expect(latestCleanBuild(bs, 'r')?.custom_data.artifact).toBe('x2');
  });
});

describe('listBundles', () => {
  it('lists every bundle newest first, by the build time of the build carrying it', () => {
    expect(listBundles(fixture).map((b) => b.id)).toEqual(['p-new', 'p-old']);
  });

  it('refuses a bundle path outside the store', () => {
    const bad = images({ a: [{ art: 'a1', t: 1, bundle: 'x' }] });
    const pb = bad[0]?.builds[0]?.custom_data.patch_bundle;
    if (pb) pb.path = '../x.tar.zst';
    expect(() => listBundles(bad)).toThrow(/patch_bundle: cannot be released: path/);
  });
});

describe('planRelease', () => {
  const recorded: Release = {
    date: '2026-11-01',
    git_commit: hex('0', 40),
    artifacts: [artifactOf('a', 'a-r1-main-1', 100), bundleArtifact('p-old')],
  };

  it.each<[string, PatchChoice, Release | undefined, boolean, Record<string, string>]>([
    [
      'new release: latest clean build per image, newest bundle',
      { mode: 'newest' },
      undefined,
      false,
      { 'image a': 'added a-r1-main-2', 'image b': 'added b-r1-main-1', 'patch-bundle p-new': 'added' },
    ],
    [
      '--no-patches on a new release',
      { mode: 'none' },
      undefined,
      false,
      { 'image a': 'added a-r1-main-2', 'image b': 'added b-r1-main-1' },
    ],
    [
      '--patches picks an older bundle',
      { mode: 'id', id: 'p-old' },
      undefined,
      false,
      { 'image a': 'added a-r1-main-2', 'image b': 'added b-r1-main-1', 'patch-bundle p-old': 'added' },
    ],
    [
      'existing release, --force: image replaced, recorded bundle kept by default',
      { mode: 'newest' },
      recorded,
      true,
      { 'image a': 'changed a-r1-main-2', 'image b': 'added b-r1-main-1', 'patch-bundle p-old': 'unchanged' },
    ],
    [
      'existing release, --force --patches: bundle switched',
      { mode: 'id', id: 'p-new' },
      recorded,
      true,
      { 'image a': 'changed a-r1-main-2', 'image b': 'added b-r1-main-1', 'patch-bundle p-new': 'changed' },
    ],
    [
      'existing release, --force --no-patches: bundle removed',
      { mode: 'none' },
      recorded,
      true,
      { 'image a': 'changed a-r1-main-2', 'image b': 'added b-r1-main-1', 'patch-bundle p-old': 'removed' },
    ],
  ])('%s', (_name, patches, existing, force, expected) => {
    const plan = planRelease(req(patches, force), facts(existing));
    const got = Object.fromEntries(
      plan.changes.map((c) => [
        `${c.artifact.kind} ${c.artifact.name}`,
        [c.status, c.artifact.build].filter(Boolean).join(' '),
      ]),
    );
    expect(got).toEqual(expected);
    expect(plan.entry.artifacts.map((a) => a.name).sort()).toEqual(
      plan.changes
        .filter((c) => c.status !== 'removed')
        .map((c) => c.artifact.name)
        .sort(),
    );
    expect(plan.changed).toBe(true);
    expect(plan.entry.date).toBe('2026-11-25');
  });

  it('records store paths, sizes and sums of the builds', () => {
    const plan = planRelease(req(), facts());
    expect(plan.entry.artifacts[0]).toEqual({
      name: 'a',
      kind: 'image',
      path: 'builds/a-r1-main-2.qcow2',
      sha256: hex('0', 64),
      size: 300,
      build: 'a-r1-main-2',
      git_commit: hex('1', 40),
    });
    expect(plan.entry.git_commit).toBe(hex('f', 40));
    expect(plan.notes).toContain('c: no clean build for r1 (only -dirty builds); skipped');
  });

  it.each<[string, PatchChoice, RegExp]>([
    [
      'a newer image build',
      { mode: 'newest' },
      /image a: builds\/a-r1-main-1\.qcow2 → builds\/a-r1-main-2\.qcow2/,
    ],
    ['another bundle', { mode: 'id', id: 'p-new' }, /patch-bundle p-old → p-new/],
    ['--no-patches', { mode: 'none' }, /patch-bundle p-old: would be removed/],
  ])('needs --force to change the recorded artifacts: %s', (_n, patches, message) => {
    expect(() => planRelease(req(patches), facts(recorded))).toThrow(message);
    expect(() => planRelease(req(patches), facts(recorded))).toThrow(
      expect.objectContaining({ code: 'E_RELEASE_CHANGED', hint: expect.stringMatching(/--force/) }),
    );
  });

  it('adds to an existing release without --force and keeps its date and commit', () => {
    const current: Release = { ...recorded, artifacts: [artifactOf('a', 'a-r1-main-2', 300)] };
    const plan = planRelease(req(), facts(current));
    expect(plan.changes.map((c) => `${c.status} ${c.artifact.name}`)).toEqual([
      'unchanged a',
      'added b',
      'added p-new',
    ]);
    expect(plan.entry.date).toBe('2026-11-01');
    expect(plan.entry.git_commit).toBe(hex('0', 40));
  });

  it('changes nothing when the release is up to date, and keeps artifacts it cannot rebuild', () => {
    const installer: ReleaseArtifact = { ...artifactOf('usb', 'usb-r1', 7), kind: 'installer', name: 'usb' };
    const current: Release = {
      ...recorded,
      artifacts: [
        artifactOf('a', 'a-r1-main-2', 300),
        artifactOf('b', 'b-r1-main-1', 200),
        artifactOf('c', 'c-r1-main-0', 10),
        bundleArtifact('p-old'),
        installer,
      ],
    };
    const plan = planRelease(req(), facts(current));
    expect(plan.changed).toBe(false);
    expect(plan.changes.map((c) => c.status)).toEqual([
      'unchanged',
      'unchanged',
      'kept',
      'unchanged',
      'kept',
    ]);
    expect(plan.entry).toEqual(current);
    expect(plan.notes.join('\n')).toMatch(/c: no clean build for r1 .*keeping the recorded artifact/);
    expect(plan.notes.join('\n')).toMatch(/keeping p-old recorded for r1; the newest is p-new/);
  });

  it('names the known bundles for an unknown --patches id', () => {
    expect(() => planRelease(req({ mode: 'id', id: 'nope' }), facts())).toThrow(
      expect.objectContaining({ code: 'E_NO_BUNDLE', hint: 'known bundles (newest first): p-new, p-old' }),
    );
  });

  it.each([
    ['r9', /build one first: osbake build <image> --release r9/],
    ['r1-dirty-only', /-dirty builds are never released/],
  ])('refuses a release with nothing to record (%s)', (release, hint) => {
    const only = images({ x: [{ art: 'x1', t: 1, release: 'r1-dirty-only', dirty: true }] });
    const f = { images: only, date: '2026-11-25', gitCommit: hex('f', 40) };
    let err: unknown;
    try {
      planRelease(req({ mode: 'none' }, false, release), f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('E_RELEASE_EMPTY');
    expect((err as UserError).hint).toMatch(hint);
  });
});

describe('installers in releases', () => {
  const installerBuild = (art: string, t: number): BuildEntry => {
    const b = build({ art, t, release: 'r1' });
    return {
      ...b,
      builder_type: 'osbake-installer',
      files: [{ name: `${art}.raw`, size: t }],
      custom_data: { ...b.custom_data, artifact_kind: 'installer' },
    };
  };
  it('records an installer build as kind installer with its .raw file', () => {
    expect(imageArtifact('usb-installer', installerBuild('usb-installer-r1-main-aaaa', 5))).toMatchObject({
      name: 'usb-installer',
      kind: 'installer',
      path: 'builds/usb-installer-r1-main-aaaa.raw',
      build: 'usb-installer-r1-main-aaaa',
    });
  });
  it('adds the installer to a release that already records the image, and keeps it on re-runs', () => {
    const images: ImageBuilds[] = [
      {
        image: 'debian12-base',
        file: 'a',
        builds: [build({ art: 'debian12-base-r1-main-1111', t: 3, release: 'r1' })],
      },
      { image: 'usb-installer', file: 'b', builds: [installerBuild('usb-installer-r1-main-aaaa', 5)] },
    ];
    const existing: Release = {
      date: '2026-11-01',
      git_commit: hex('2', 40),
      artifacts: [imageArtifact('debian12-base', images[0]?.builds[0] as BuildEntry)],
    };
    const req = { release: 'r1', patches: { mode: 'none' } as PatchChoice, force: false };
    const facts = { images, existing, date: '2026-11-26', gitCommit: hex('3', 40) };
    const plan = planRelease(req, facts);
    expect(plan.changes.map((c) => [c.status, c.artifact.kind, c.artifact.name])).toEqual([
      ['unchanged', 'image', 'debian12-base'],
      ['added', 'installer', 'usb-installer'],
    ]);
    const again = planRelease(req, { ...facts, existing: plan.entry });
    expect(again.changed).toBe(false);
    expect(again.changes.map((c) => c.status)).toEqual(['unchanged', 'unchanged']);
  });
});
