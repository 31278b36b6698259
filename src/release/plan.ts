/**
 * osbake release R, the pure part: which artifacts make up release R (the latest clean build of
 * each image for R, and a patch bundle), and how that differs from what manifest.yaml records.
 * Adding artifacts is always allowed; changing or removing a recorded one needs --force.
 */
import { type BuildEntry, buildFileOf } from '../config/builds.js';
import { type Release, type ReleaseArtifact, ReleaseArtifactSchema } from '../config/releases.js';
import { UserError } from '../errors.js';

export interface ImageBuilds {
  image: string;
  /** images/<image>/manifest.json (for messages). */
  file: string;
  builds: BuildEntry[];
}

/** --patches <id> | --no-patches | (default) the newest bundle. */
export type PatchChoice = { mode: 'newest' } | { mode: 'none' } | { mode: 'id'; id: string };

export interface ReleaseRequest {
  release: string;
  patches: PatchChoice;
  force: boolean;
}

export interface ReleaseFacts {
  images: ImageBuilds[];
  /** The entry manifest.yaml records for the release now, if any. */
  existing?: Release;
  /** Today, YYYY-MM-DD. */
  date: string;
  /** The project's current commit. */
  gitCommit: string;
}

export type ChangeStatus = 'added' | 'changed' | 'removed' | 'unchanged' | 'kept';

export interface ArtifactChange {
  status: ChangeStatus;
  /** The artifact after the change (the recorded one for removed and kept). */
  artifact: ReleaseArtifact;
  previous?: ReleaseArtifact;
}

export interface ReleasePlan {
  release: string;
  entry: Release;
  previous?: Release;
  changes: ArtifactChange[];
  notes: string[];
  /** Whether manifest.yaml changes. */
  changed: boolean;
}

export interface BundleCandidate {
  id: string;
  artifact: ReleaseArtifact;
  buildTime: number;
  /** The build that created it. */
  build: string;
}

const byTime = (a: BuildEntry, b: BuildEntry) => a.build_time - b.build_time;

/** Latest (by build_time; later entry on a tie) clean build of `release`, if any. */
export function latestCleanBuild(builds: readonly BuildEntry[], release: string): BuildEntry | undefined {
  return builds
    .filter((b) => b.custom_data.release === release && !b.custom_data.git_dirty)
    .sort(byTime)
    .at(-1);
}

function checked(a: ReleaseArtifact, where: string): ReleaseArtifact {
  const r = ReleaseArtifactSchema.safeParse(a);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new UserError(
    'E_MANIFEST',
    `${where}: cannot be released: ${issue?.path.join('.')}: ${issue?.message}`,
    'fix or prune the build entry (osbake manifest prune)',
  );
}

/** Installers (kind: installer) record artifact_kind "installer" and their .raw file. */
export function artifactKindOf(build: BuildEntry): 'image' | 'installer' {
  return build.custom_data.artifact_kind === 'installer' ? 'installer' : 'image';
}

export function imageArtifact(image: string, build: BuildEntry): ReleaseArtifact {
  const d = build.custom_data;
  const file = buildFileOf(build);
  return {
    name: image,
    kind: artifactKindOf(build),
    path: `builds/${file}`,
    sha256: d.sha256,
    size: d.size,
    build: d.artifact,
    git_commit: d.git_commit,
  };
}

/** Every patch bundle the builds carry, newest first (one per id). */
export function listBundles(images: readonly ImageBuilds[]): BundleCandidate[] {
  const all: BundleCandidate[] = [];
  for (const img of images) {
    for (const b of img.builds) {
      const p = b.custom_data.patch_bundle;
      if (!p) continue;
      const artifact = checked(
        {
          name: p.id,
          kind: 'patch-bundle',
          path: p.path,
          sha256: p.sha256,
          size: p.size,
          git_commit: b.custom_data.git_commit,
        },
        `${img.file}: build ${b.custom_data.artifact}: patch_bundle`,
      );
      all.push({ id: p.id, artifact, buildTime: b.build_time, build: b.custom_data.artifact });
    }
  }
  all.sort((a, b) => b.buildTime - a.buildTime);
  return all.filter((c, i) => all.findIndex((x) => x.id === c.id) === i);
}

function sameArtifact(a: ReleaseArtifact, b: ReleaseArtifact): boolean {
  return (
    a.kind === b.kind &&
    a.name === b.name &&
    a.path === b.path &&
    a.sha256 === b.sha256 &&
    a.size === b.size &&
    a.build === b.build
  );
}

/** The bundle release R gets, and notes about the choice. */
function chooseBundle(
  req: ReleaseRequest,
  bundles: BundleCandidate[],
  recorded: ReleaseArtifact[],
  notes: string[],
): ReleaseArtifact | undefined {
  const choice = req.patches;
  if (choice.mode === 'none') return undefined;
  if (choice.mode === 'id') {
    const found = bundles.find((b) => b.id === choice.id);
    if (found) return found.artifact;
    const rec = recorded.find((a) => a.name === choice.id);
    if (rec) return rec;
    throw new UserError(
      'E_NO_BUNDLE',
      `no patch bundle "${choice.id}" in any image's manifest.json`,
      bundles.length > 0
        ? `known bundles (newest first): ${bundles.map((b) => b.id).join(', ')}`
        : 'no build carries a patch bundle yet: build one with osbake build <image> --create-patches',
    );
  }
  const newest = bundles[0];
  const current = recorded[0];
  if (current) {
    if (newest && newest.id !== current.name) {
      notes.push(
        `patch bundle: keeping ${current.name} recorded for ${req.release}; the newest is ${newest.id} ` +
          `(--patches ${newest.id} --force to switch)`,
      );
    }
    return current;
  }
  if (!newest) {
    notes.push('patch bundle: none (no build carries one; osbake build <image> --create-patches makes one)');
    return undefined;
  }
  notes.push(`patch bundle: ${newest.id}, the newest (made by ${newest.build})`);
  return newest.artifact;
}

function describeChange(c: ArtifactChange): string {
  const what = `${c.artifact.kind} ${c.artifact.name}`;
  if (c.status === 'removed') return `${what}: would be removed (${c.artifact.path})`;
  const prev = c.previous;
  if (!prev) return what;
  if (prev.name !== c.artifact.name) return `${prev.kind} ${prev.name} → ${c.artifact.name}`;
  if (prev.path !== c.artifact.path) return `${what}: ${prev.path} → ${c.artifact.path}`;
  return `${what}: ${c.artifact.path} has a different sha256/size than recorded`;
}

/** Each image's latest clean build for R, as the artifact to record (pure); notes for the others. */
function imageCandidates(
  req: ReleaseRequest,
  facts: ReleaseFacts,
  recorded: readonly ReleaseArtifact[],
  notes: string[],
): { candidates: Map<string, ReleaseArtifact>; dirtyOnly: number } {
  const candidates = new Map<string, ReleaseArtifact>();
  let dirtyOnly = 0;
  for (const img of [...facts.images].sort((a, b) => a.image.localeCompare(b.image))) {
    const build = latestCleanBuild(img.builds, req.release);
    if (build) {
      candidates.set(
        img.image,
        checked(imageArtifact(img.image, build), `${img.file}: build ${build.custom_data.artifact}`),
      );
      continue;
    }
    const dirty = img.builds.some((b) => b.custom_data.release === req.release);
    if (dirty) dirtyOnly++;
    const kept = recorded.some((a) => a.kind !== 'patch-bundle' && a.name === img.image);
    notes.push(
      `${img.image}: no clean build for ${req.release}${dirty ? ' (only -dirty builds)' : ''}` +
        (kept ? '; keeping the recorded artifact' : '; skipped'),
    );
  }
  return { candidates, dirtyOnly };
}

/**
 * The recorded artifacts merged with the candidates and the chosen bundle (pure): each recorded
 * one unchanged, changed, kept or removed, in its recorded order; new ones added after.
 */
function mergeArtifacts(
  req: ReleaseRequest,
  recorded: readonly ReleaseArtifact[],
  candidates: Map<string, ReleaseArtifact>,
  bundle: ReleaseArtifact | undefined,
): { changes: ArtifactChange[]; artifacts: ReleaseArtifact[] } {
  const recordedBundles = recorded.filter((a) => a.kind === 'patch-bundle');
  const changes: ArtifactChange[] = [];
  const artifacts: ReleaseArtifact[] = [];
  // The recorded bundle the chosen one replaces: the same id, else the first recorded bundle.
  const pairWith = bundle
    ? (recordedBundles.find((a) => a.name === bundle.name) ?? recordedBundles[0])
    : undefined;
  let bundlePlaced = false;
  const left = new Map(candidates);
  for (const old of recorded) {
    const next = old.kind !== 'patch-bundle' ? left.get(old.name) : undefined;
    if (next) {
      left.delete(old.name);
      const same = sameArtifact(old, next);
      changes.push({ status: same ? 'unchanged' : 'changed', artifact: next, previous: old });
      artifacts.push(same ? old : next);
    } else if (old.kind === 'patch-bundle' && req.patches.mode !== 'newest') {
      if (bundle && old === pairWith) {
        bundlePlaced = true;
        const same = sameArtifact(old, bundle);
        changes.push({ status: same ? 'unchanged' : 'changed', artifact: bundle, previous: old });
        artifacts.push(same ? old : bundle);
      } else {
        changes.push({ status: 'removed', artifact: old });
      }
    } else {
      if (old === bundle) bundlePlaced = true;
      changes.push({ status: old === bundle ? 'unchanged' : 'kept', artifact: old });
      artifacts.push(old);
    }
  }
  for (const a of left.values()) {
    changes.push({ status: 'added', artifact: a });
    artifacts.push(a);
  }
  if (bundle && !bundlePlaced) {
    changes.push({ status: 'added', artifact: bundle });
    artifacts.push(bundle);
  }
  return { changes, artifacts };
}

/** Plan release R (pure): throws UserError when there is nothing to record or --force is needed. */
export function planRelease(req: ReleaseRequest, facts: ReleaseFacts): ReleasePlan {
  const notes: string[] = [];
  const existing = facts.existing;
  const recorded = existing?.artifacts ?? [];
  const { candidates, dirtyOnly } = imageCandidates(req, facts, recorded, notes);
  const recordedBundles = recorded.filter((a) => a.kind === 'patch-bundle');
  const bundle = chooseBundle(req, listBundles(facts.images), recordedBundles, notes);
  const { changes, artifacts } = mergeArtifacts(req, recorded, candidates, bundle);
  if (artifacts.length === 0) {
    throw new UserError(
      'E_RELEASE_EMPTY',
      `nothing to record for release ${req.release}: no image has a clean build for it`,
      dirtyOnly > 0
        ? `-dirty builds are never released: commit, then osbake build <image> --release ${req.release}`
        : `build one first: osbake build <image> --release ${req.release}`,
    );
  }
  const risky = changes.filter((c) => c.status === 'changed' || c.status === 'removed');
  if (risky.length > 0 && !req.force) {
    throw new UserError(
      'E_RELEASE_CHANGED',
      `release ${req.release} already records other artifacts: ${risky.map(describeChange).join('; ')}`,
      `pass --force to replace them, or record a new release name`,
    );
  }
  const changed = !existing || changes.some((c) => c.status !== 'unchanged' && c.status !== 'kept');
  const restamp = !existing || risky.length > 0;
  const entry: Release = {
    date: restamp || !existing ? facts.date : existing.date,
    git_commit: restamp || !existing ? facts.gitCommit : existing.git_commit,
    artifacts,
  };
  return { release: req.release, entry, previous: existing, changes, notes, changed };
}
