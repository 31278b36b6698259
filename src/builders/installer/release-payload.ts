/** The image an installer carries: release R's payload image, as manifest.yaml or manifest.json records it. */
import { existsSync } from 'node:fs';
import { readBuildsManifest } from '../../config/builds.js';
import type { ImageDefinition } from '../../config/image.js';
import type { Project } from '../../config/project.js';
import { loadReleases, type ReleaseArtifact, releasesFile, requireRelease } from '../../config/releases.js';
import { UserError } from '../../errors.js';
import { manifestFileOf } from '../../release/image-builds.js';
import { imageArtifact, latestCleanBuild } from '../../release/plan.js';

/** The payload image of release R as manifest.yaml records it (pure). */
export function findPayloadArtifact(
  artifacts: readonly ReleaseArtifact[],
  image: string,
  release: string,
): ReleaseArtifact {
  const found = artifacts.find((a) => a.kind === 'image' && a.name === image);
  if (found) return found;
  const images = artifacts.filter((a) => a.kind === 'image').map((a) => a.name);
  throw new UserError(
    'E_NO_PAYLOAD',
    `release ${release} has no image ${image} to put on the installer`,
    images.length > 0
      ? `release ${release} has: ${images.join(', ')} (set installer.payload in image.yaml)`
      : `build and release it first: osbake build ${image} --release ${release} && osbake release ${release}`,
  );
}

/**
 * Release R's payload image: as manifest.yaml records it; when R does not record it yet (osbake
 * build --all builds the base image, then the installer, before anyone runs osbake release), the
 * latest clean build of the payload image for R from its manifest.json (`onFallback` says which).
 */
export async function payloadOfRelease(
  project: Project,
  installer: ImageDefinition,
  release: string,
  onFallback?: (line: string) => void,
): Promise<ReleaseArtifact> {
  const payload = installer.config.installer.payload;
  const file = releasesFile(project);
  const releases = await loadReleases(file);
  const recorded = releases.releases[release]?.artifacts.find(
    (x) => x.kind === 'image' && x.name === payload,
  );
  if (recorded) return recorded;
  const builds = manifestFileOf(project, payload);
  const build = existsSync(builds)
    ? latestCleanBuild((await readBuildsManifest(builds)).builds, release)
    : undefined;
  if (!build) {
    const r = requireRelease(file, releases, release);
    return findPayloadArtifact(r.artifacts, payload, release);
  }
  onFallback?.(
    `release ${release} does not record ${payload} yet: using its latest clean build ${build.custom_data.artifact}`,
  );
  return imageArtifact(payload, build);
}
