/**
 * osbake verify R [--mirror URL]: every artifact of release R, in the local store or on a mirror
 * over HTTP (verify-artifact.ts checks each), has the recorded size and SHA-256; the release's
 * record on the mirror agrees with manifest.yaml; the signature; the stick a burn or netboot uses.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { mirrorUrl } from '../artifacts/naming.js';
import { loadProject } from '../config/project.js';
import {
  loadReleases,
  type Release,
  type ReleaseArtifact,
  ReleaseArtifactSchema,
  releasesFile,
  requireRelease,
} from '../config/releases.js';
import { UserError } from '../errors.js';
import { INPUT_CAPS, parseInputJson, readInputText } from '../fsx/input.js';
import { createNullLogger } from '../log/logger.js';
import { checkReleaseSignature } from './signature.js';
import { checkStoreArtifact, describeResult, errorCode } from './verify-artifact.js';

/** What a mirror served by `osbake serve` says about its releases (GET <mirror>/api/releases). */
const MirrorReleasesSchema = z.object({
  releases: z.array(
    z.object({
      name: z.string(),
      date: z.string(),
      git_commit: z.string(),
      // The API adds url, sha256_url and present to each artifact: not part of the record.
      artifacts: z.array(z.object(ReleaseArtifactSchema.shape)),
    }),
  ),
});

/**
 * Release R as the mirror's /api/releases lists it; undefined when the mirror has no such API
 * (a plain web server: HTTP 404) or does not list R.
 */
export async function fetchMirrorRelease(
  mirror: string,
  name: string,
  fetchImpl: typeof fetch = fetch,
): Promise<Release | undefined> {
  const url = mirrorUrl(mirror, 'api/releases');
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: { accept: 'application/json' } });
  } catch (err) {
    throw new UserError('E_MIRROR', `cannot reach ${url}: ${errorCode(err)}`, 'check the --mirror URL');
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const parsed = res.ok ? MirrorReleasesSchema.safeParse(await res.json().catch(() => undefined)) : undefined;
  if (!parsed?.success) {
    throw new UserError(
      'E_MIRROR',
      `${url} answered ${res.ok ? 'with JSON osbake does not understand' : `HTTP ${res.status}`}`,
      'is --mirror the root of a store served by osbake serve (or a plain file mirror)?',
    );
  }
  const r = parsed.data.releases.find((x) => x.name === name);
  return r ? { date: r.date, git_commit: r.git_commit, artifacts: r.artifacts } : undefined;
}

const artifactKey = (a: ReleaseArtifact) => `${a.kind} ${a.name} ${a.path} ${a.sha256} ${a.size}`;

/** Artifacts the two records do not agree on, as text (pure). */
export function compareReleaseRecords(local: Release, mirror: Release): string[] {
  const l = new Set(local.artifacts.map(artifactKey));
  const m = new Set(mirror.artifacts.map(artifactKey));
  return [
    ...[...l].filter((k) => !m.has(k)).map((k) => `manifest.yaml only: ${k}`),
    ...[...m].filter((k) => !l.has(k)).map((k) => `mirror only: ${k}`),
  ];
}

const StoreReleaseJsonSchema = z.object({
  release: z.string(),
  date: z.string(),
  git_commit: z.string(),
  artifacts: z.array(ReleaseArtifactSchema),
});

/**
 * store/releases/<R>.json (what serve and mirrors show) must list what manifest.yaml records: a
 * difference is a verification failure, not something to discover on a node.
 */
export async function checkStoreReleaseJson(
  storeDir: string,
  name: string,
  release: Release,
  yamlFile: string,
): Promise<void> {
  const json = join(storeDir, 'releases', `${name}.json`);
  let text: string;
  try {
    text = await readInputText(json, {
      what: 'release record',
      maxBytes: INPUT_CAPS.record,
      noSymlink: true,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const parsed = StoreReleaseJsonSchema.safeParse(parseInputJson(json, text, 'release record'));
  const diff = parsed.success
    ? [
        ...compareReleaseRecords(release, { ...release, artifacts: parsed.data.artifacts }),
        ...(parsed.data.release === name ? [] : [`names release ${parsed.data.release}`]),
      ]
    : ['is not a release record'];
  if (diff.length > 0) {
    throw new UserError(
      'E_VERIFY',
      `${json} disagrees with ${yamlFile} for release ${name}: ${diff.join('; ')}`,
      `run osbake release ${name} again: it rewrites ${json} from manifest.yaml`,
    );
  }
}

export async function checkReleaseForBurn(
  projectDir: string,
  name: string,
  o: { installerChecksum?: boolean } = {},
): Promise<string> {
  const project = await loadProject(projectDir);
  const file = releasesFile(project);
  const release = requireRelease(file, await loadReleases(file), name);
  const sig = await checkReleaseSignature({
    project,
    name,
    release,
    storeDir: project.storeDir,
    log: createNullLogger(),
  });
  const installer = release.artifacts.find((a) => a.kind === 'installer');
  if (installer && o.installerChecksum !== false) {
    const r = await checkStoreArtifact(project.storeDir, installer);
    if (r.status !== 'OK') {
      throw new UserError(
        'E_VERIFY',
        `the installer of release ${name} is not as recorded: ${r.status} (${describeResult(r)})`,
        `do not write it: get it again, then osbake verify ${name}`,
      );
    }
  }
  return `${sig.summary}${o.installerChecksum === false ? '' : '; installer checksum as recorded'}`;
}
