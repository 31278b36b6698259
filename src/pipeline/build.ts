/**
 * osbake build IMAGE: the plan (pure names and paths) and the manifest.json entry of a build.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { artifactName } from '../artifacts/naming.js';
import type { Firmware } from '../builders/boot-test/qemu-args.js';
import type { BuilderType } from '../builders/builder.js';
import type { BuildEntry, PackerManifestBuild } from '../config/builds.js';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { ReleaseName } from '../config/releases.js';
import type { Provenance } from '../git/provenance.js';
import { OSBAKE_VERSION } from '../version.js';

export interface BuildRequest {
  image: string;
  release?: ReleaseName;
  skipCommit: boolean;
  debug: boolean;
  /** Also make a security-patch bundle from the built image (--release then optional). */
  createPatches?: boolean;
  /** Override osbake.yaml's builder.accelerator. */
  accelerator?: 'auto' | 'kvm' | 'tcg';
  /** Keep the work directory after the build (always kept with --debug on failure). */
  keepWork?: boolean;
  /** The builder that runs (auto resolved), and the hypervisor's name for libvirt builds. */
  builder?: BuilderType;
  hypervisor?: string;
  /** --no-test: no boot test after the build (recorded in manifest.json). */
  noTest?: boolean;
  /** --firmware for the boot test (default bios). */
  firmware?: Firmware;
  /** Installer builds: an extra file (--package) put on the stick with its .sha256. */
  packageFile?: string;
}

export interface BuildPlan {
  image: string;
  release?: ReleaseName;
  artifact: string;
  /** File name in the store: <artifact>.<the builder's artifactExt> (.qcow2 disks, .raw sticks) */
  artifactFile: string;
  buildId: string;
  workDir: string;
  logFile: string;
  storeBuildsDir: string;
  manifestFile: string;
}

/** Names and paths of a build (pure). */
export function planBuild(
  project: Project,
  image: ImageDefinition,
  prov: Provenance,
  req: Pick<BuildRequest, 'release'>,
  ext: 'qcow2' | 'raw' = 'qcow2',
  buildId: string = randomUUID(),
): BuildPlan {
  const artifact = artifactName({
    image: image.name,
    release: req.release,
    branch: prov.branch,
    shortCommit: prov.shortCommit,
    dirty: prov.dirty,
  });
  return {
    image: image.name,
    release: req.release,
    artifact,
    artifactFile: `${artifact}.${ext}`,
    buildId,
    workDir: join(project.workDir, 'work', `${image.name}-${buildId.slice(0, 8)}`),
    // One log per run: <image>-<commit>-<build id>.log (a rebuild of one commit keeps both logs).
    logFile: join(project.outDir, `${image.name}-${prov.shortCommit}-${buildId.slice(0, 8)}.log`),
    storeBuildsDir: join(project.storeDir, 'builds'),
    manifestFile: image.manifestFile,
  };
}

export interface RecordInputs {
  plan: BuildPlan;
  prov: Provenance;
  packer: PackerManifestBuild;
  sha256: string;
  size: number;
  packageCount: number;
  durationS: number;
  accelerator: string;
  extra?: Record<string, unknown>;
}

/** The manifest.json entry (Packer's shape, osbake's facts in custom_data). */
export function buildManifestEntry(r: RecordInputs): BuildEntry {
  return {
    name: r.packer.name,
    builder_type: r.packer.builder_type,
    build_time: r.packer.build_time,
    files: [{ name: r.plan.artifactFile, size: r.size }],
    artifact_id: r.packer.artifact_id,
    packer_run_uuid: r.packer.packer_run_uuid,
    custom_data: {
      ...(r.plan.release ? { release: r.plan.release } : {}),
      artifact: r.plan.artifact,
      git_branch: r.prov.branch,
      git_commit: r.prov.commit,
      git_dirty: r.prov.dirty,
      sha256: r.sha256,
      size: r.size,
      package_count: r.packageCount,
      duration_s: Math.round(r.durationS * 10) / 10,
      accelerator: r.accelerator,
      osbake_version: OSBAKE_VERSION,
      ...r.extra,
    },
  };
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
