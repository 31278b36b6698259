/**
 * The data behind the web page and the JSON API (/api/releases, /api/builds), assembled from
 * what the catalog loader read (pure): releases newest first with their artifacts and the package
 * diff against the previous release; builds per image, newest first, clean or dirty, with their
 * package counts and the diff against the release before them.
 */

import type { PackageRecord } from '../artifacts/package-list.js';
import { type BuildEntry, buildFileOf, type Reproducible, reproducibleOf } from '../config/builds.js';
import {
  buildOfArtifact,
  type Release,
  type ReleaseArtifact,
  sortReleasesNewestFirst,
} from '../config/releases.js';
import { diffSides, type ImageDiff, type PackageSide } from '../release/diff.js';

export interface CatalogInputs {
  /** Where the data came from: a project (manifest.yaml + images/*\/manifest.json) or a bare store. */
  source: 'project' | 'store';
  releases: { name: string; release: Release }[];
  images: { image: string; builds: BuildEntry[] }[];
  /** Package lists by artifact name (builds/<artifact>.packages.tsv); absent when the file is. */
  packages: ReadonlyMap<string, PackageRecord[]>;
  /** Store-relative paths of the files that exist. */
  present: ReadonlySet<string>;
  /** Release name → the state of its signatures (absent: unsigned). */
  signatures?: ReadonlyMap<string, SignatureView>;
}

/** What the page and the API say about a release's signatures. */
export interface SignatureView {
  status: 'good' | 'bad' | 'unknown-key' | 'expired-key' | 'revoked-key' | 'unsigned' | 'error';
  fingerprint: string | null;
  signer: string | null;
  /** One line: "signed by NAME FINGERPRINT", "unsigned", "BAD signature ...". */
  text: string;
}

export const UNSIGNED: SignatureView = {
  status: 'unsigned',
  fingerprint: null,
  signer: null,
  text: 'unsigned',
};

export interface ApiArtifact extends ReleaseArtifact {
  /** Relative URL of the file, and of its .sha256 sidecar. */
  url: string;
  sha256_url: string;
  present: boolean;
}

export interface ApiRelease {
  name: string;
  date: string;
  git_commit: string;
  artifacts: ApiArtifact[];
  /** The next older release, whose images the diff compares against. */
  previous: string | null;
  diff: ImageDiff[] | null;
  signature: SignatureView;
}

export interface ApiBuild {
  image: string;
  artifact: string;
  release: string | null;
  clean: boolean;
  git_branch: string;
  git_commit: string;
  /** ISO time of the build. */
  date: string;
  sha256: string | null;
  size: number;
  package_count: number;
  /** The builder that made it (chroot, qemu, libvirt, osbake-installer). */
  builder: string;
  /** The boot test: passed, failed, skipped (--no-test) or null (built before osbake tested builds). */
  test: {
    status: 'passed' | 'failed' | 'skipped';
    firmware?: string;
    duration_s?: number;
    checks: number;
  } | null;
  /** osbake rebuild's last verdict: the same bytes again (or not), and when. */
  reproducible: Reproducible | null;
  path: string;
  url: string;
  sha256_url: string;
  packages_url: string | null;
  present: boolean;
  /** Releases that record this build. */
  releases: string[];
  /** The release build it is compared with, and the package diff (null when either list is missing). */
  diff_base: { release: string; artifact: string } | null;
  diff: Omit<ImageDiff, 'image' | 'a' | 'b'> | null;
}

export interface Catalog {
  source: CatalogInputs['source'];
  releases: ApiRelease[];
  builds: ApiBuild[];
  /** Package lists by artifact name, for the page (the API links the .packages.tsv instead). */
  packages: ReadonlyMap<string, PackageRecord[]>;
}

/** URL of a store-relative path, each segment encoded. */
export function storeUrl(path: string): string {
  return `/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** Image name → build artifact of a release's images. */
function releaseImages(r: Release): Map<string, string> {
  return new Map(r.artifacts.filter((a) => a.kind === 'image').map((a) => [a.name, buildOfArtifact(a)]));
}

function diffOf(
  image: string,
  a: string | undefined,
  b: string | undefined,
  packages: ReadonlyMap<string, PackageRecord[]>,
): ImageDiff | undefined {
  const pa = a === undefined ? [] : packages.get(a);
  const pb = b === undefined ? [] : packages.get(b);
  if (!pa || !pb) return undefined;
  const sa: PackageSide = new Map(a === undefined ? [] : [[image, { artifact: a, packages: pa }]]);
  const sb: PackageSide = new Map(b === undefined ? [] : [[image, { artifact: b, packages: pb }]]);
  return diffSides(sa, sb)[0];
}

type SortedReleases = { name: string; release: Release }[];

/** A release as the API shows it, with its package diff against the release before (pure). */
function apiReleaseOf(inp: CatalogInputs, sorted: SortedReleases, i: number): ApiRelease {
  const cur = sorted[i] as SortedReleases[number];
  const { name, release } = cur;
  const prev = sorted[i + 1];
  let diff: ImageDiff[] | null = null;
  if (prev) {
    const now = releaseImages(release);
    const before = releaseImages(prev.release);
    const images = [...new Set([...before.keys(), ...now.keys()])].sort();
    const diffs = images.map((img) => diffOf(img, before.get(img), now.get(img), inp.packages));
    diff = diffs.every((d) => d !== undefined) ? (diffs as ImageDiff[]) : null;
  }
  return {
    name,
    date: release.date,
    git_commit: release.git_commit,
    artifacts: release.artifacts.map((a) => ({
      ...a,
      url: storeUrl(a.path),
      sha256_url: storeUrl(`${a.path}.sha256`),
      present: inp.present.has(a.path),
    })),
    previous: prev?.name ?? null,
    diff,
    signature: inp.signatures?.get(name) ?? UNSIGNED,
  };
}

/** A build's boot test as the API shows it (pure). */
function apiTestOf(t: BuildEntry['custom_data']['test']): ApiBuild['test'] {
  if (!t) return null;
  return {
    status: t.skipped ? 'skipped' : t.passed ? 'passed' : 'failed',
    firmware: t.firmware,
    duration_s: t.duration_s,
    checks: t.checks?.length ?? 0,
  };
}

/** One build as the API shows it: where it is, which releases record it, its diff (pure). */
function apiBuildOf(inp: CatalogInputs, sorted: SortedReleases, image: string, b: BuildEntry): ApiBuild {
  const d = b.custom_data;
  // The file the build recorded (a stick is .raw), as manifest.json's files[0] names it.
  const path = `builds/${buildFileOf(b)}`;
  const inReleases = sorted.filter((r) => releaseImages(r.release).get(image) === d.artifact);
  // Compare with the image in the release before the first one recording this build, else the newest.
  const first = inReleases.at(-1);
  const firstIdx = first ? sorted.indexOf(first) : -1;
  const base = sorted
    .slice(firstIdx + 1)
    .map((r) => ({ release: r.name, artifact: releaseImages(r.release).get(image) }))
    .find(
      (x): x is { release: string; artifact: string } =>
        x.artifact !== undefined && x.artifact !== d.artifact,
    );
  const diff = base ? diffOf(image, base.artifact, d.artifact, inp.packages) : undefined;
  const pkgPath = `builds/${d.artifact}.packages.tsv`;
  return {
    image,
    artifact: d.artifact,
    release: d.release ?? null,
    clean: !d.git_dirty,
    git_branch: d.git_branch,
    git_commit: d.git_commit,
    date: new Date(b.build_time * 1000).toISOString(),
    // null: unknown (no .sha256 beside the file, no release recording it); never invented.
    sha256: /^[0-9a-f]{64}$/.test(d.sha256) ? d.sha256 : null,
    size: d.size,
    package_count: d.package_count,
    builder: d.builder ?? b.builder_type,
    test: apiTestOf(d.test),
    reproducible: reproducibleOf(d.reproducible),
    path,
    url: storeUrl(path),
    sha256_url: storeUrl(`${path}.sha256`),
    packages_url: inp.present.has(pkgPath) ? storeUrl(pkgPath) : null,
    present: inp.present.has(path),
    releases: inReleases.map((r) => r.name),
    diff_base: base ?? null,
    diff: diff
      ? { added: diff.added, removed: diff.removed, changed: diff.changed, unchanged: diff.unchanged }
      : null,
  };
}

/** Assemble releases and builds (pure). */
export function assembleCatalog(inp: CatalogInputs): Catalog {
  const sorted = sortReleasesNewestFirst(inp.releases);
  const releases = sorted.map((_, i) => apiReleaseOf(inp, sorted, i));
  const builds: ApiBuild[] = [];
  for (const { image, builds: entries } of [...inp.images].sort((a, b) => a.image.localeCompare(b.image))) {
    for (const b of [...entries].sort((x, y) => y.build_time - x.build_time)) {
      builds.push(apiBuildOf(inp, sorted, image, b));
    }
  }
  return { source: inp.source, releases, builds, packages: inp.packages };
}

/** The JSON bodies of the API. */
export function apiReleases(c: Catalog): object {
  return { source: c.source, releases: c.releases };
}

export function apiBuilds(c: Catalog): object {
  return { source: c.source, builds: c.builds };
}
