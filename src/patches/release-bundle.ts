/** The patch bundle recorded for a release in manifest.yaml (if any). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Project } from '../config/project.js';
import { loadReleases, RELEASES_FILE } from '../config/releases.js';

export interface BundleRef {
  name: string;
  path: string;
  sha256: string;
  size: number;
}

export async function findReleasePatchBundle(
  project: Project,
  release: string,
): Promise<BundleRef | undefined> {
  if (!existsSync(join(project.root, RELEASES_FILE))) return undefined;
  const releases = await loadReleases(project);
  const r = releases.releases[release];
  const a = r?.artifacts.find((x) => x.kind === 'patch-bundle');
  return a ? { name: a.name, path: a.path, sha256: a.sha256, size: a.size } : undefined;
}
