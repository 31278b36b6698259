/** The `osbake packages` and `osbake diff` verbs: a build's package list, two builds compared. */
import { loadProject, type Project } from '../config/project.js';
import { buildOfArtifact, loadReleases, type ReleasesFile, releasesFile } from '../config/releases.js';
import type { TextOut } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { diffSides, formatImageDiff, type PackageSide } from './diff.js';
import { readImageBuilds } from './image-builds.js';
import { existsInStore, readBuildPackages, resolveBuild } from './packages.js';
import type { ImageBuilds } from './plan.js';

/** One side of a diff: a release (its images) or one build. */
async function resolveSide(
  project: Project,
  name: string,
  images: ImageBuilds[],
  releases: ReleasesFile,
): Promise<PackageSide> {
  const side: PackageSide = new Map();
  const release = releases.releases[name];
  if (release) {
    for (const a of release.artifacts.filter((x) => x.kind === 'image')) {
      const artifact = buildOfArtifact(a);
      side.set(a.name, { artifact, packages: await readBuildPackages(project.storeDir, artifact) });
    }
    return side;
  }
  const b = resolveBuild(name, images, await existsInStore(project.storeDir, name));
  side.set(b.image, {
    artifact: b.artifact,
    packages: await readBuildPackages(project.storeDir, b.artifact),
  });
  return side;
}

export async function runPackages(o: { projectDir: string; build: string; json: boolean; out?: TextOut }) {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const { images } = await readImageBuilds(project);
  const b = resolveBuild(o.build, images, await existsInStore(project.storeDir, o.build));
  const packages = await readBuildPackages(project.storeDir, b.artifact);
  if (o.json) {
    out.write(`${JSON.stringify(packages, null, 2)}\n`);
    return;
  }
  out.write(`# ${b.artifact}: ${packages.length} packages\n`);
  out.write(
    formatTable(
      ['NAME', 'VERSION', 'ARCH'],
      packages.map((p) => [p.name, p.version, p.arch]),
    ),
  );
}

export async function runDiff(o: { projectDir: string; a: string; b: string; json: boolean; out?: TextOut }) {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const { images } = await readImageBuilds(project);
  const releases = await loadReleases(releasesFile(project));
  const diffs = diffSides(
    await resolveSide(project, o.a, images, releases),
    await resolveSide(project, o.b, images, releases),
  );
  if (o.json) {
    out.write(`${JSON.stringify({ a: o.a, b: o.b, images: diffs }, null, 2)}\n`);
    return;
  }
  out.write(diffs.map(formatImageDiff).join('\n'));
}
