/** The `osbake manifest prune` verb: keep each image's latest clean build in manifest.json. */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { readBuildsManifest, withManifestLock, writeJsonAtomic } from '../config/builds.js';
import { listImageNames, loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import type { TextOut } from '../log/progress.js';
import { manifestFileOf } from './image-builds.js';
import { formatPrunePlan, type PrunePlan, planPrune } from './prune.js';

export interface PruneOptions {
  projectDir: string;
  image?: string;
  dryRun: boolean;
  out?: TextOut;
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
