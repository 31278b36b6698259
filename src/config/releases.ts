/**
 * manifest.yaml at the project root: which artifacts (images, patch bundles, installers) make up
 * each release, with their store paths, sizes and SHA-256 sums. Written by `osbake release` under a
 * lock and atomically, editing the YAML document in place so comments and order survive.
 */
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Document, isMap, isScalar, type LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { type ConfigIssue, UserError } from '../errors.js';
import { INPUT_CAPS, readInputText } from '../fsx/input.js';
import { writeFileAtomically } from './atomic.js';
import { withManifestLock } from './builds.js';
import { parseYamlConfig } from './load.js';
import type { Project } from './project.js';

export const RELEASES_FILE = 'manifest.yaml';

/** One rule for release names everywhere (build, release, verify, serve, artifact names): ≤ 64 characters, no "..". */
export const RELEASE_NAME_RE = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RELEASE_NAME_RULE =
  'must start with a letter or digit, hold only letters, digits, ".", "_" and "-" (no ".."), at most 64 characters';

export const ARTIFACT_KINDS = ['image', 'patch-bundle', 'installer'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** A path inside the store: relative, normalized, no "..". */
export function isStoreRelativePath(p: string): boolean {
  return (
    p.length > 0 &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    posix.normalize(p) === p &&
    !p.split('/').some((s) => s === '..' || s === '.' || s === '')
  );
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (a SHA-256)');

export const ReleaseArtifactSchema = z
  .object({
    name: z.string().min(1).describe('image name, or the bundle id for patch bundles'),
    kind: z.enum(ARTIFACT_KINDS).describe('image | patch-bundle | installer'),
    path: z
      .string()
      .refine(isStoreRelativePath, 'must be relative to the store root, normalized, without ".."')
      .describe('file relative to the store root, e.g. builds/<artifact>.qcow2'),
    sha256: sha256.describe('SHA-256 of the file'),
    size: z.number().int().nonnegative().describe('size of the file in bytes'),
    build: z.string().min(1).optional().describe('artifact name of the build (images, installers)'),
    git_commit: z
      .string()
      .regex(/^[0-9a-f]{7,40}$/, 'must be a git commit hash')
      .optional()
      .describe('commit the build was made from'),
  })
  .strict();

export const ReleaseSchema = z
  .object({
    date: z.iso.date('must be an ISO date like 2026-11-25').describe('date the release was recorded'),
    git_commit: z
      .string()
      .regex(/^[0-9a-f]{40}$/, 'must be a full 40-digit git commit hash')
      .describe('project commit when the release was recorded'),
    artifacts: z.array(ReleaseArtifactSchema).default([]).describe('the files that make up the release'),
    signed_by: z
      .string()
      .regex(/^[0-9A-F]{40}$/, 'must be a key fingerprint (40 upper-case hex digits)')
      .optional()
      .describe('fingerprint of the key that signed store/releases/<R>.json and <R>.SHA256SUMS'),
  })
  .strict();

export const ReleasesFileSchema = z
  .object({
    releases: z
      .record(z.string().regex(RELEASE_NAME_RE, `release names ${RELEASE_NAME_RULE}`), ReleaseSchema)
      .nullable()
      .default({})
      .transform((r) => r ?? {})
      .describe('release name → release'),
  })
  .strict();

export type ReleaseArtifact = z.output<typeof ReleaseArtifactSchema>;
export type Release = z.output<typeof ReleaseSchema>;
export type ReleasesFile = z.output<typeof ReleasesFileSchema>;

export const RELEASES_HEADER = [
  ' osbake release manifest: the artifacts that make up each release.',
  ' Written by `osbake release <R>`; checked by `osbake verify <R> [--mirror URL]`.',
  '',
  ' releases.<R>:',
  '   date        ISO date the release was recorded',
  '   git_commit  project commit when it was recorded',
  '   artifacts:  one entry per file',
  '     name        image name, or the bundle id for patch bundles',
  '     kind        image | patch-bundle | installer',
  '     path        file relative to the store root (never absolute, never ..)',
  '     sha256      SHA-256 of the file',
  '     size        size in bytes',
  '     build       artifact name of the build (images, installers)',
  '     git_commit  commit the build was made from (optional)',
].join('\n');

export function releasesFile(project: Pick<Project, 'root'>): string {
  return join(project.root, RELEASES_FILE);
}

/** A release name that has been checked (parseReleaseName is the only way to make one). */
export type ReleaseName = string & { readonly __releaseName: unique symbol };

/** A release name given on the command line, checked once into its own type. */
export function parseReleaseName(name: string): ReleaseName {
  if (!RELEASE_NAME_RE.test(name)) {
    throw new UserError(
      'E_USAGE',
      `"${name}" is not a valid release name`,
      `release names ${RELEASE_NAME_RULE}, e.g. 2026.11`,
    );
  }
  return name as ReleaseName;
}

/** Check a release name given on the command line. */
export function assertReleaseName(name: string): asserts name is ReleaseName {
  parseReleaseName(name);
}

/**
 * Release names that YAML reads as numbers (`2026.10:` is the float 2026.1): the name would change
 * silently, so they must be quoted.
 */
function unquotedNumericNames(file: string, doc: Document.Parsed, counter: LineCounter): ConfigIssue[] {
  const releases = doc.get('releases', true);
  if (!isMap(releases)) return [];
  const issues: ConfigIssue[] = [];
  for (const pair of releases.items) {
    const key = pair.key;
    if (!isScalar(key) || typeof key.value === 'string') continue;
    const source = key.source ?? String(key.value);
    if (String(key.value) === source) continue;
    issues.push({
      file,
      path: `releases.${source}`,
      message: `release name ${source} reads as the number ${String(key.value)}: quote it ("${source}")`,
      line: key.range ? counter.linePos(key.range[0]).line : undefined,
    });
  }
  return issues;
}

/** Parse manifest.yaml text, reporting every problem at once as file:line: key.path: message. */
export function parseReleases(file: string, text: string): ReleasesFile {
  // One parse: the schema and the numeric-name check both read the same document.
  const parsed = parseYamlConfig(file, text, ReleasesFileSchema, (doc, counter) =>
    unquotedNumericNames(file, doc, counter),
  );
  return { ...parsed, releases: releaseMap(parsed.releases) };
}

/**
 * Releases keyed by name without a prototype: a release named constructor or toString is a release
 * like any other, and looking up an unknown one never finds Object.prototype's members.
 */
function releaseMap(r: Record<string, Release>): Record<string, Release> {
  return Object.assign(Object.create(null) as Record<string, Release>, r);
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readInputText(file, { what: 'manifest.yaml', maxBytes: INPUT_CAPS.manifest });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Load manifest.yaml (of a project, or a file path); a missing file has no releases. */
export async function loadReleases(where: Pick<Project, 'root'> | string): Promise<ReleasesFile> {
  const file = typeof where === 'string' ? where : releasesFile(where);
  const text = await readText(file);
  return text === undefined ? { releases: releaseMap({}) } : parseReleases(file, text);
}

/** The release or a UserError naming the known ones. */
export function requireRelease(file: string, releases: ReleasesFile, name: string): Release {
  const r = releases.releases[name];
  if (r) return r;
  const known = Object.keys(releases.releases);
  throw new UserError(
    'E_NO_RELEASE',
    `no release "${name}" in ${file}`,
    known.length > 0
      ? `known releases: ${known.join(', ')}`
      : 'no release is recorded yet: osbake release <R> records one',
  );
}

/** Canonical JSON of a release (for "did it change?" comparisons). */
export function releaseKey(r: Release | undefined): string {
  if (!r) return '';
  return JSON.stringify({
    date: r.date,
    git_commit: r.git_commit,
    artifacts: r.artifacts.map((a) => [a.kind, a.name, a.path, a.sha256, a.size, a.build, a.git_commit]),
    signed_by: r.signed_by ?? null,
  });
}

/** The YAML text of manifest.yaml with releases.<name> set to release (pure). */
export function setReleaseInYaml(text: string | undefined, name: string, release: Release): string {
  const doc = text === undefined || text.trim() === '' ? new Document({ releases: {} }) : parseDocument(text);
  if (text === undefined || text.trim() === '') doc.commentBefore = RELEASES_HEADER;
  if (!isMap(doc.get('releases', true))) doc.set('releases', doc.createNode({}));
  const node = doc.createNode({
    date: release.date,
    git_commit: release.git_commit,
    ...(release.signed_by ? { signed_by: release.signed_by } : {}),
    artifacts: release.artifacts.map((a) => ({
      name: a.name,
      kind: a.kind,
      path: a.path,
      sha256: a.sha256,
      size: a.size,
      ...(a.build ? { build: a.build } : {}),
      ...(a.git_commit ? { git_commit: a.git_commit } : {}),
    })),
  });
  // Quote the date so that YAML 1.1 readers do not turn it into a timestamp.
  const date = node.get('date', true);
  if (isScalar(date)) date.type = 'QUOTE_DOUBLE';
  doc.setIn(['releases', name], node);
  return doc.toString({ lineWidth: 0 });
}

/**
 * Record release <name> in manifest.yaml under a lock, atomically. `expected` is the entry the
 * caller planned against: if someone changed it meanwhile to anything but exactly `release`,
 * nothing is written (E_CONCURRENT); if it already is `release`, nothing needs writing.
 * `alsoUnderLock` runs under the same lock with the recorded entry (store/releases/R.json is
 * written from it, so the two files cannot disagree); if it fails, manifest.yaml is put back.
 */
export async function writeRelease(
  file: string,
  name: string,
  release: Release,
  expected: Release | undefined,
  alsoUnderLock?: (recorded: Release) => Promise<void>,
): Promise<void> {
  ReleaseSchema.parse(release);
  assertReleaseName(name);
  await withManifestLock(file, async () => {
    const text = await readText(file);
    const current = text === undefined ? releaseMap({}) : parseReleases(file, text).releases;
    const now = releaseKey(current[name]);
    if (now === releaseKey(release)) {
      // Already recorded exactly so (by another osbake release of the same plan): nothing to write.
      await alsoUnderLock?.(release);
      return;
    }
    if (now !== releaseKey(expected)) {
      throw new UserError(
        'E_CONCURRENT',
        `release ${name} in ${file} changed while osbake was checking it`,
        `run osbake release ${name} again`,
      );
    }
    await writeFileAtomically(file, setReleaseInYaml(text, name, release));
    try {
      await alsoUnderLock?.(release);
    } catch (err) {
      // Nothing half-done: manifest.yaml as it was (or no file, as there was none).
      if (text === undefined) await rm(file, { force: true });
      else await writeFileAtomically(file, text);
      throw err;
    }
  });
}

const collator = new Intl.Collator('en', { numeric: true });

/** Newest first: by date, then by name ("2026.11" after "2026.9"). */
export function sortReleasesNewestFirst<T extends { name: string; release: { date: string } }>(
  releases: readonly T[],
): T[] {
  return [...releases].sort(
    (a, b) => b.release.date.localeCompare(a.release.date) || collator.compare(b.name, a.name),
  );
}

/** The build a release's image artifact names: its `build`, else its file name without .qcow2 (pure). */
export function buildOfArtifact(a: Pick<ReleaseArtifact, 'build' | 'path'>): string {
  return a.build ?? (a.path.split('/').at(-1) ?? a.path).replace(/\.qcow2$/, '');
}
