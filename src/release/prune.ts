/**
 * osbake manifest prune [IMAGE]: keep only the latest clean build in images/<image>/manifest.json
 * (what used to be pruned by hand before a merge). The plan is pure (this file); run-prune.ts writes
 * it under the manifest lock, atomically, from a plan made inside the lock. Store files are not touched.
 */
import type { BuildEntry, BuildsManifest } from '../config/builds.js';

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
