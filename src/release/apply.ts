/**
 * osbake release R: gather the facts (builds, manifest.yaml, project commit), plan (pure), check
 * every artifact in the store, then write manifest.yaml (locked, atomic) and releases/<R>.json.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { writeJsonAtomic } from '../config/builds.js';
import { loadProject } from '../config/project.js';
import {
  assertReleaseName,
  loadReleases,
  type Release,
  releasesFile,
  writeRelease,
} from '../config/releases.js';
import { UserError, withContext } from '../errors.js';
import { readProvenance } from '../git/provenance.js';
import { createNullLogger } from '../log/logger.js';
import type { ProgressSink } from '../log/progress.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { readImageBuilds } from './image-builds.js';
import { type PatchChoice, planRelease, type ReleasePlan } from './plan.js';
import { checkStoreArtifact, describeResult, type VerifyResult } from './verify.js';

export interface RunReleaseOptions {
  projectDir: string;
  release: string;
  /** commander's --patches <id> / --no-patches: an id, false, or undefined (the newest bundle). */
  patches?: string | boolean;
  force: boolean;
  out?: Pick<NodeJS.WriteStream, 'write'>;
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
  return join(storeDir, 'releases', `${release}.json`);
}

export function releaseJson(name: string, r: Release): object {
  return { release: name, date: r.date, git_commit: r.git_commit, artifacts: r.artifacts };
}

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

  await checkStore(project.storeDir, plan, o.progress ?? new ByteProgress());

  // manifest.yaml and store/releases/R.json under one lock, R.json from what was recorded.
  const json = releaseJsonFile(project.storeDir, o.release);
  await writeRelease(file, o.release, plan.entry, existing, async (recorded) => {
    await mkdir(dirname(json), { recursive: true });
    await writeJsonAtomic(json, releaseJson(o.release, recorded));
  });

  out.write(formatReleaseSummary(plan));
  const rel = (p: string) => relative(process.cwd(), p) || p;
  out.write(
    `${plan.changed ? 'recorded in' : 'unchanged in'} ${rel(file)}; wrote ${rel(json)}` +
      `${plan.changed ? ` (commit ${rel(file)} to keep it)` : ''}\n`,
  );
  return plan;
}
