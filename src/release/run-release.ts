/**
 * osbake release R: gather the facts (builds, manifest.yaml, project commit), plan (pure), check
 * every artifact in the store, then write manifest.yaml (locked, atomic) and releases/<R>.json with
 * <R>.SHA256SUMS, both signed when signing.key is set.
 */
import { relative } from 'node:path';
import { loadProject } from '../config/project.js';
import {
  assertReleaseName,
  loadReleases,
  type Release,
  releasesFile,
  writeRelease,
} from '../config/releases.js';
import { UserError, withContext } from '../errors.js';
import { commitRecord, readProvenance } from '../git/provenance.js';
import { createNullLogger } from '../log/logger.js';
import type { ProgressSink, TextOut } from '../log/progress.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { requireSecretKey } from '../signing/gpg.js';
import { signingKeyOf } from '../signing/project-keys.js';
import { readImageBuilds } from './image-builds.js';
import { type PatchChoice, planRelease, type ReleasePlan } from './plan.js';
import { releaseJson, releaseRecordFiles, writeReleaseRecords } from './signature.js';
import { checkStoreArtifact, describeResult, type VerifyResult } from './verify-artifact.js';

export interface RunReleaseOptions {
  projectDir: string;
  release: string;
  /** commander's --patches <id> / --no-patches: an id, false, or undefined (the newest bundle). */
  patches?: string | boolean;
  force: boolean;
  /** Write manifest.yaml but do not commit it (as build --skip-commit does with manifest.json). */
  skipCommit?: boolean;
  out?: TextOut;
  progress?: ProgressSink;
  /** The project commit to record (default: git rev-parse HEAD). */
  gitCommit?: string;
  now?: Date;
}

export function patchChoice(patches: string | boolean | undefined): PatchChoice {
  if (patches === false) return { mode: 'none' };
  if (typeof patches === 'string') return { mode: 'id', id: patches };
  return { mode: 'newest' };
}

/** store/releases/<R>.json: the release as JSON, for the HTTP server. */
export function releaseJsonFile(storeDir: string, release: string): string {
  return releaseRecordFiles(storeDir, release).json;
}

export { releaseJson };

export function formatReleaseSummary(plan: ReleasePlan): string {
  const counts = new Map<string, number>();
  for (const c of plan.changes) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  const rows = plan.changes.map((c) => [
    c.status,
    c.artifact.kind,
    c.artifact.name,
    formatBytes(c.artifact.size),
    c.status === 'changed' && c.previous && c.previous.path !== c.artifact.path
      ? `${c.previous.path} → ${c.artifact.path}`
      : c.artifact.path,
  ]);
  return `release ${plan.release} (${plan.entry.date}): ${summary}\n${formatTable(['STATUS', 'KIND', 'NAME', 'SIZE', 'PATH'], rows)}`;
}

async function checkStore(storeDir: string, plan: ReleasePlan, progress: ProgressSink): Promise<void> {
  const bad: VerifyResult[] = [];
  for (const a of plan.entry.artifacts) {
    const r = await checkStoreArtifact(storeDir, a, progress);
    if (r.status !== 'OK') bad.push(r);
  }
  if (bad.length === 0) return;
  throw new UserError(
    'E_STORE',
    `release ${plan.release} not recorded: ${bad.length} artifact(s) are not in ${storeDir} as recorded: ` +
      bad.map((r) => `${r.artifact.path}: ${r.status} (${describeResult(r)})`).join('; '),
    'restore the files (or rebuild the images), then run osbake release again',
  );
}

/** A release entry without signed_by (an unsigned re-recording drops the old signer) (pure). */
function omitSigner(r: Release): Release {
  const { signed_by: _, ...rest } = r;
  return rest;
}

const rel0 = (p: string) => relative(process.cwd(), p) || p;

export async function runRelease(o: RunReleaseOptions): Promise<ReleasePlan> {
  assertReleaseName(o.release);
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const file = releasesFile(project);
  const { images, without } = await readImageBuilds(project);
  const existing = (await loadReleases(file)).releases[o.release];
  const gitCommit =
    o.gitCommit ??
    (
      await readProvenance(project.root, createNullLogger()).catch((err: unknown) => {
        throw withContext('reading the project commit to record', err);
      })
    ).commit;
  const plan = planRelease(
    { release: o.release, patches: patchChoice(o.patches), force: o.force },
    { images, existing, date: (o.now ?? new Date()).toISOString().slice(0, 10), gitCommit },
  );
  for (const image of without) out.write(`note: ${image}: no builds yet (no manifest.json); skipped\n`);
  for (const n of plan.notes) out.write(`note: ${n}\n`);

  // Signing: the key is checked before any work (its secret here, its public key in keys/).
  const log = createNullLogger();
  const key = signingKeyOf(project);
  if (key) await requireSecretKey(key.home, key.fingerprint, log);
  else if (project.config.signing.required) {
    throw new UserError(
      'E_UNSIGNED',
      `signing.required is set in ${project.file}, but no signing.key: release ${o.release} would be unsigned`,
      'make a key with osbake keys init (it sets signing.key), or set signing.required: false',
    );
  }

  await checkStore(project.storeDir, plan, o.progress ?? new ByteProgress());

  // manifest.yaml and store/releases/R.json (+ R.SHA256SUMS, signatures) under one lock, from
  // what was recorded; a failure puts manifest.yaml back.
  const json = releaseJsonFile(project.storeDir, o.release);
  const entry = key ? { ...plan.entry, signed_by: key.fingerprint } : omitSigner(plan.entry);
  await writeRelease(file, o.release, entry, existing, async (recorded) => {
    await writeReleaseRecords(project.storeDir, o.release, recorded, key, log);
  });
  if (key) out.write(`signed ${rel0(json)} and ${o.release}.SHA256SUMS with ${key.fingerprint}\n`);

  out.write(formatReleaseSummary(plan));
  const rel = (p: string) => relative(process.cwd(), p) || p;
  let committed = '';
  // A caller that names the commit itself (no git work tree of its own) commits nothing.
  if (plan.changed && !o.skipCommit && o.gitCommit === undefined) {
    await commitRecord(project.root, file, [`recorded release ${o.release}`], log).catch((err: unknown) => {
      throw withContext(`release ${o.release} is recorded, but committing ${rel(file)} failed`, err);
    });
    committed = ' (committed)';
  } else if (plan.changed) {
    committed = ` (--skip-commit: commit ${rel(file)} to keep it)`;
  }
  out.write(
    `${plan.changed ? 'recorded in' : 'unchanged in'} ${rel(file)}; wrote ${rel(json)}${committed}\n`,
  );
  return plan;
}
