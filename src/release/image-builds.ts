/** The builds of every image (images/<image>/manifest.json), for release, diff, packages and prune. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readBuildsManifest } from '../config/builds.js';
import { IMAGES_DIR, listImageNames } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { ImageBuilds } from './plan.js';

export function manifestFileOf(project: Pick<Project, 'root'>, image: string): string {
  return join(project.root, IMAGES_DIR, image, 'manifest.json');
}

/** Images that have a manifest.json, with their builds; `without` lists those that have none. */
export async function readImageBuilds(
  project: Project,
): Promise<{ images: ImageBuilds[]; without: string[] }> {
  const images: ImageBuilds[] = [];
  const without: string[] = [];
  for (const image of await listImageNames(project)) {
    const file = manifestFileOf(project, image);
    if (!existsSync(file)) {
      without.push(image);
      continue;
    }
    images.push({ image, file, builds: (await readBuildsManifest(file)).builds });
  }
  return { images, without };
}
