/**
 * osbake packages BUILD and osbake diff A B: package lists from the store's
 * builds/<artifact>.packages.tsv, found by artifact name, image name (its latest build) or release.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PackageRecord, parsePackageList } from '../artifacts/package-list.js';
import { buildsDir } from '../artifacts/store.js';
import { UserError } from '../errors.js';
import type { ImageBuilds } from './plan.js';

const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface ResolvedBuild {
  image: string;
  artifact: string;
}

/** An image name (its latest build) or an artifact name → the build (pure). */
export function resolveBuild(name: string, images: readonly ImageBuilds[], inStore: boolean): ResolvedBuild {
  const img = images.find((i) => i.image === name);
  if (img) {
    const latest = [...img.builds].sort((a, b) => a.build_time - b.build_time).at(-1);
    if (!latest) {
      throw new UserError(
        'E_NO_BUILD',
        `image ${name} has no builds yet`,
        `osbake build ${name} --release <R>`,
      );
    }
    return { image: name, artifact: latest.custom_data.artifact };
  }
  for (const i of images) {
    if (i.builds.some((b) => b.custom_data.artifact === name)) return { image: i.image, artifact: name };
  }
  if (inStore && ARTIFACT_NAME.test(name)) {
    // A build no manifest.json remembers (pruned): its image is the longest image name it starts with.
    const image = images
      .map((i) => i.image)
      .filter((i) => name.startsWith(`${i}-`))
      .sort((a, b) => b.length - a.length)[0];
    return { image: image ?? name, artifact: name };
  }
  throw new UserError(
    'E_NO_BUILD',
    `"${name}" is not an image or a build`,
    images.length > 0
      ? `give an artifact name (ls store/builds) or an image name: ${images.map((i) => i.image).join(', ')}`
      : 'give an artifact name (ls store/builds) or an image name',
  );
}

export function packagesFile(storeDir: string, artifact: string): string {
  return join(buildsDir(storeDir), `${artifact}.packages.tsv`);
}

export async function readBuildPackages(storeDir: string, artifact: string): Promise<PackageRecord[]> {
  const file = packagesFile(storeDir, artifact);
  try {
    return parsePackageList(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new UserError(
      'E_NO_PACKAGES',
      `no package list for ${artifact} (${file} does not exist)`,
      'the store keeps <artifact>.packages.tsv next to each image built by osbake build',
    );
  }
}

export async function existsInStore(storeDir: string, name: string): Promise<boolean> {
  if (!ARTIFACT_NAME.test(name)) return false;
  try {
    await access(packagesFile(storeDir, name));
    return true;
  } catch {
    return false;
  }
}
