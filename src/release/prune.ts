/**
 * osbake manifest prune [IMAGE]: keep only the latest clean build in images/<image>/manifest.json
 * (what used to be pruned by hand before a merge). The plan is pure; the write happens under the
 * manifest lock, atomically, from a plan made inside the lock. Store files are not touched.
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import {
  type BuildEntry,
  type BuildsManifest,
  readBuildsManifest,
  withManifestLock,
  writeJsonAtomic,
} from '../config/builds.js';
import { listImageNames, loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import { manifestFileOf } from './image-builds.js';

export interface PrunePlan {
  image: string;
  keep?: BuildEntry;
  remove: BuildEntry[];
  note?: string;
  /** The manifest after pruning. */
  result: BuildsManifest;
}

/** Which builds to drop (pure): all but the latest clean one (the latest one if none is clean). */
export function planPrune(image: string, manifest: BuildsManifest): PrunePlan {
  const latest = (bs: BuildEntry[]) =>
    bs.reduce<BuildEntry | undefined>(
      (best, b) => (!best || b.build_time >= best.build_time ? b : best),
      undefined,
    );
  const clean = latest(manifest.builds.filter((b) => !b.custom_data.git_dirty));
  const keep = clean ?? latest(manifest.builds);
  if (!keep) return { image, remove: [], note: 'no builds', result: manifest };
  const note = clean ? undefined : `no clean build: keeping the latest build ${keep.custom_data.artifact}`;
  return {
    image,
    keep,
    remove: manifest.builds.filter((b) => b !== keep),
    note,
    // last_run_uuid names the run of the build that is left, as Packer's own manifest would.
    result: { builds: [keep], last_run_uuid: keep.packer_run_uuid },
  };
}

function when(b: BuildEntry): string {
  return new Date(b.build_time * 1000).toISOString().replace('T', ' ').slice(0, 16);
}

export function formatPrunePlan(plan: PrunePlan, dryRun: boolean): string {
  const lines: string[] = [];
  if (plan.note) lines.push(`${plan.image}: ${plan.note}`);
  const desc = (b: BuildEntry) =>
    `${b.custom_data.artifact} (${when(b)}${b.custom_data.git_dirty ? ', dirty' : ''})`;
  if (plan.keep) lines.push(`${plan.image}: keep ${desc(plan.keep)}`);
  for (const b of plan.remove) lines.push(`${plan.image}: ${dryRun ? 'would remove' : 'remove'} ${desc(b)}`);
  if (plan.keep && plan.remove.length === 0) lines.push(`${plan.image}: nothing to prune`);
  return lines.map((l) => `${l}\n`).join('');
}

export interface PruneOptions {
  projectDir: string;
  image?: string;
  dryRun: boolean;
  out?: Pick<NodeJS.WriteStream, 'write'>;
}

export async function runPrune(o: PruneOptions): Promise<PrunePlan[]> {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const names = o.image ? [(await loadImage(project, o.image)).name] : await listImageNames(project);
  const plans: PrunePlan[] = [];
  for (const image of names) {
    const file = manifestFileOf(project, image);
    if (!existsSync(file)) {
      out.write(`${image}: no manifest.json (no builds yet)\n`);
      continue;
    }
    const plan = o.dryRun
      ? planPrune(image, await readBuildsManifest(file))
      : await withManifestLock(file, async () => {
          const p = planPrune(image, await readBuildsManifest(file));
          if (p.remove.length > 0) await writeJsonAtomic(file, p.result);
          return p;
        });
    out.write(formatPrunePlan(plan, o.dryRun));
    plans.push(plan);
  }
  const removed = plans.reduce((n, p) => n + p.remove.length, 0);
  const files = plans
    .filter((p) => p.remove.length > 0)
    .map((p) => relative(project.root, manifestFileOf(project, p.image)));
  if (o.dryRun) out.write(`dry run: ${removed} build(s) would be removed; nothing written\n`);
  else if (removed > 0) {
    out.write(
      `removed ${removed} build(s) from ${files.join(', ')} (store files are kept; commit the manifest)\n`,
    );
  }
  return plans;
}
