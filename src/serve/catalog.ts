/**
 * What the artifact server shows, read from disk. Inside a project: releases from manifest.yaml and
 * builds from images/*\/manifest.json. With only a store directory: releases from
 * store/releases/*.json (written by `osbake release`) and builds from the files in store/builds/
 * (name, .sha256, .packages.tsv, SBOM, mtime). Package lists are cached by size and mtime.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type PackageRecord, parsePackageList } from '../artifacts/package-list.js';
import { type BuildEntry, buildFileOf } from '../config/builds.js';
import type { Project } from '../config/project.js';
import {
  buildOfArtifact,
  loadReleases,
  type Release,
  ReleaseSchema,
  releasesFile,
} from '../config/releases.js';
import { INPUT_CAPS, parseInputJson, readInputText } from '../fsx/input.js';
import { createNullLogger } from '../log/logger.js';
import { readImageBuilds } from '../release/image-builds.js';
import { releaseRecordFiles, releaseSignatureState } from '../release/signature.js';
import { describeSignature, type SignatureResult } from '../signing/gpg.js';
import { keysDir } from '../signing/project-keys.js';
import { assembleCatalog, type Catalog, type CatalogInputs, type SignatureView, UNSIGNED } from './api.js';

export interface CatalogSource {
  storeDir: string;
  /** The project, when serving from inside one; else the store alone is read. */
  project?: Project;
}

const ReleaseJsonSchema = ReleaseSchema.extend({ release: z.string().min(1) });

const packageCache = new Map<string, { key: string; packages: PackageRecord[] }>();

async function statOrUndefined(file: string) {
  try {
    return await stat(file);
  } catch {
    return undefined;
  }
}

async function readPackages(storeDir: string, artifact: string): Promise<PackageRecord[] | undefined> {
  const file = join(storeDir, 'builds', `${artifact}.packages.tsv`);
  const st = await statOrUndefined(file);
  if (!st?.isFile()) return undefined;
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = packageCache.get(file);
  if (hit?.key === key) return hit.packages;
  const packages = parsePackageList(await readFile(file, 'utf8'));
  packageCache.set(file, { key, packages });
  return packages;
}

/** store/releases/*.json; files that do not parse are skipped (and reported by `problems`). */
async function readStoreReleases(
  storeDir: string,
  problems: string[],
): Promise<{ name: string; release: Release }[]> {
  const dir = join(storeDir, 'releases');
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: { name: string; release: Release }[] = [];
  for (const n of names.filter((x) => x.endsWith('.json') && !x.startsWith('.')).sort()) {
    try {
      const file = join(dir, n);
      const text = await readInputText(file, {
        what: 'release record',
        maxBytes: INPUT_CAPS.record,
        noSymlink: true,
      });
      const r = ReleaseJsonSchema.parse(parseInputJson(file, text, 'release record'));
      out.push({
        name: r.release,
        release: { date: r.date, git_commit: r.git_commit, artifacts: r.artifacts },
      });
    } catch (err) {
      problems.push(`releases/${n}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return out;
}

async function sbomImageName(storeDir: string, artifact: string): Promise<string | undefined> {
  try {
    const sbom = JSON.parse(await readFile(join(storeDir, 'builds', `${artifact}.cdx.json`), 'utf8')) as {
      metadata?: { component?: { name?: unknown } };
    };
    const name = sbom.metadata?.component?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

/** Builds known only from the files in store/builds/ (no manifest.json at hand). */
async function readStoreBuilds(
  storeDir: string,
  releases: { name: string; release: Release }[],
): Promise<{ image: string; builds: BuildEntry[] }[]> {
  const dir = join(storeDir, 'builds');
  const files = (await readdir(dir).catch(() => [] as string[])).filter(
    (f) => f.endsWith('.qcow2') && !f.startsWith('.'),
  );
  const byImage = new Map<string, BuildEntry[]>();
  for (const f of files.sort()) {
    const artifact = f.slice(0, -'.qcow2'.length);
    // A symlink is another name for a build, not a build: the file it names is listed (if it is
    // in the store) under its own name.
    const link = await lstat(join(dir, f)).catch(() => undefined);
    if (!link || link.isSymbolicLink()) continue;
    const st = await statOrUndefined(join(dir, f));
    if (!st?.isFile()) continue;
    const sidecar = await readFile(join(dir, `${f}.sha256`), 'utf8').catch(() => '');
    const recorded = releases
      .flatMap((r) => r.release.artifacts.map((a) => ({ r: r.name, a })))
      .find((x) => x.a.build === artifact || x.a.path === `builds/${f}`);
    // Never invented: the sidecar, else what a release recorded, else unknown ('').
    const sha256 = /^[0-9a-f]{64}/.exec(sidecar)?.[0] ?? recorded?.a.sha256 ?? '';
    const image = recorded?.a.name ?? (await sbomImageName(storeDir, artifact)) ?? artifact;
    const dirty = artifact.endsWith('-dirty');
    const parts = artifact.split('-');
    const short = parts.at(dirty ? -2 : -1) ?? '';
    const entry: BuildEntry = {
      name: image,
      builder_type: 'unknown',
      build_time: Math.floor(st.mtimeMs / 1000),
      files: [{ name: f, size: st.size }],
      artifact_id: 'VM',
      packer_run_uuid: '',
      custom_data: {
        ...(recorded ? { release: recorded.r } : {}),
        artifact,
        git_branch: '',
        git_commit: recorded?.a.git_commit ?? (/^[0-9a-f]{7,40}$/.test(short) ? short : ''),
        git_dirty: dirty,
        sha256,
        size: st.size,
        package_count: (await readPackages(storeDir, artifact))?.length ?? 0,
        duration_s: 0,
        accelerator: '',
        osbake_version: '',
      },
    };
    byImage.set(image, [...(byImage.get(image) ?? []), entry]);
  }
  return [...byImage].map(([image, builds]) => ({ image, builds }));
}

/** The page's words for a signature result (pure). */
export function signatureView(r: SignatureResult): SignatureView {
  if (r.status === 'unsigned') return UNSIGNED;
  if (r.status === 'good') {
    return {
      status: 'good',
      fingerprint: r.fingerprint,
      signer: r.uid,
      text: `signed by ${r.uid} ${r.fingerprint}`,
    };
  }
  const fingerprint = 'fingerprint' in r && r.fingerprint ? r.fingerprint : null;
  const signer = 'uid' in r && r.uid ? r.uid : null;
  return { status: r.status, fingerprint, signer, text: describeSignature(r) };
}

const signatureCache = new Map<string, { key: string; view: SignatureView }>();

/** A release's signature state, checked with gpgv again only when a file involved changed. */
async function releaseSignature(
  storeDir: string,
  keys: string | undefined,
  name: string,
  release: Release,
): Promise<SignatureView> {
  const f = releaseRecordFiles(storeDir, name);
  const parts: string[] = [JSON.stringify(release.artifacts)];
  for (const p of [f.json, f.jsonSig, f.sums, f.sumsSig, ...(keys ? [keys] : [])]) {
    const st = await statOrUndefined(p);
    parts.push(st ? `${st.size}:${st.mtimeMs}` : '-');
  }
  const key = parts.join('|');
  const hit = signatureCache.get(`${storeDir}/${name}`);
  if (hit?.key === key) return hit.view;
  const view = signatureView(
    await releaseSignatureState({ keysDir: keys, name, release, storeDir, log: createNullLogger() }),
  );
  signatureCache.set(`${storeDir}/${name}`, { key, view });
  return view;
}

/** Read everything the page and the API show. `problems` collects files that could not be read. */
export async function loadCatalog(src: CatalogSource, problems: string[] = []): Promise<Catalog> {
  const { storeDir, project } = src;
  const releases = project
    ? Object.entries((await loadReleases(releasesFile(project))).releases).map(([name, release]) => ({
        name,
        release,
      }))
    : await readStoreReleases(storeDir, problems);
  const images = project
    ? (await readImageBuilds(project)).images.map((i) => ({ image: i.image, builds: i.builds }))
    : await readStoreBuilds(storeDir, releases);

  const artifacts = new Set<string>();
  const paths = new Set<string>();
  for (const { release } of releases) {
    for (const a of release.artifacts) {
      paths.add(a.path);
      if (a.kind === 'image') artifacts.add(buildOfArtifact(a));
    }
  }
  for (const i of images) {
    for (const b of i.builds) {
      artifacts.add(b.custom_data.artifact);
      paths.add(`builds/${buildFileOf(b)}`);
      paths.add(`builds/${b.custom_data.artifact}.packages.tsv`);
    }
  }
  const packages = new Map<string, PackageRecord[]>();
  for (const a of artifacts) {
    const p = await readPackages(storeDir, a);
    if (p) packages.set(a, p);
  }
  const present = new Set<string>();
  for (const p of paths) if ((await statOrUndefined(join(storeDir, p)))?.isFile()) present.add(p);
  const signatures = new Map<string, SignatureView>();
  const keys = project ? keysDir(project) : undefined;
  for (const { name, release } of releases) {
    signatures.set(name, await releaseSignature(storeDir, keys, name, release));
  }
  const inputs: CatalogInputs = {
    source: project ? 'project' : 'store',
    releases,
    images,
    packages,
    present,
    signatures,
  };
  return assembleCatalog(inputs);
}

/**
 * The SHA-256 osbake recorded for store files (path relative to the store → hex): every release's
 * artifacts, and inside a project every build's file. A `.sha256` answer for a recorded file comes
 * from here, never from a stored sidecar that may have been changed beside it.
 */
export async function recordedSums(
  src: CatalogSource,
  problems: string[] = [],
): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  const releases = src.project
    ? Object.values((await loadReleases(releasesFile(src.project))).releases)
    : (await readStoreReleases(src.storeDir, problems)).map((r) => r.release);
  if (src.project) {
    for (const { builds } of (await readImageBuilds(src.project)).images) {
      for (const b of builds) {
        const file = b.files?.[0]?.name;
        if (file && b.custom_data.sha256) sums.set(`builds/${file}`, b.custom_data.sha256);
      }
    }
  }
  for (const r of releases) for (const a of r.artifacts) sums.set(a.path, a.sha256);
  return sums;
}
