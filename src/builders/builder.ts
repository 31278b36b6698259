/**
 * What provisions an image: one interface (as Packer's SDK Builder), one module per builder.
 * A builder declares the tools it runs, its preflight (no side effects beyond checks) and the
 * steps it contributes between the vanilla disk and post-processing; it keeps its own state and
 * hands back an artifact, the package list and the package-manager state. The pipeline never
 * asks which builder it is running.
 */
import type { PackerManifestBuild } from '../config/builds.js';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { ReleaseName } from '../config/releases.js';
import type { Distro } from '../distros/distro.js';
import type { Logger } from '../log/logger.js';
import type { Progress } from '../log/progress.js';
import type { AcceleratorChoice } from './accel.js';

/** The builders of disk images (image.yaml kind: image): --builder or osbake.yaml builder.type chooses. */
export type DiskBuilderType = 'qemu' | 'libvirt' | 'chroot';
export const DISK_BUILDER_TYPES: readonly DiskBuilderType[] = ['qemu', 'libvirt', 'chroot'];
/** Every builder: a disk builder, or the installer's (image.yaml kind: installer chooses it). */
export type BuilderType = DiskBuilderType | 'installer';

export type Outcome = 'success' | 'failure' | 'interrupted';

/** A step a builder contributes; cleanup runs after success, failure or interruption once started. */
export interface BuilderStep {
  name: string;
  title: string;
  run(): Promise<void>;
  cleanup?(outcome: Outcome): Promise<void>;
}

/**
 * The build as the pipeline hands it to a builder. Fields marked "set before the builder's steps"
 * are filled by earlier pipeline steps (vanilla disk, patch bundle).
 */
export interface BuildJob {
  project: Project;
  image: ImageDefinition;
  distro: Distro;
  log: Logger;
  progress: Progress;
  signal: AbortSignal;
  debug: boolean;
  buildId: string;
  /** The build's own scratch directory (removed afterwards unless --keep-work). */
  workDir: string;
  artifact: string;
  /** <artifact>.<the builder's artifactExt> */
  artifactFile: string;
  /** The release (checked), or 'unreleased' for --create-patches without --release. */
  release: ReleaseName | 'unreleased';
  gitCommit: string;
  /** The accelerator chosen in preflight (KVM probe), when the build or its boot test runs QEMU here. */
  accel?: AcceleratorChoice;
  /** --var / --var-file: Packer variables of the user (builders that run Packer pass them on). */
  userVars?: { vars: readonly string[]; varFiles: readonly string[] };
  /** Set before the builder's steps: the cached host-made vanilla disk (qcow2). */
  vanillaDisk?: string;
  /** Set before the builder's steps: the unpacked patch bundle of --release R, if any. */
  patchRepoDir?: string;
  /** Set before the builder's steps: the bundle's URL as the build sees it (patchAccess http). */
  patchRepoUrl?: string;
}

/** What a finished builder hands to post-processing. */
export interface BuilderOutput {
  /** The disk image (qcow2) in the work directory. */
  artifactPath: string;
  /**
   * name TAB version TAB arch, written by the image's cleanup role (a disk image must have one);
   * absent when the artifact has no package list of its own (an installer stick).
   */
  packagesFile?: string;
  /** The distro's package-manager state (dpkg status, rpm NEVRA list) for --create-patches. */
  packageStateFile?: string;
  /** Files published beside the artifact (src → name in builds/), before the artifact itself. */
  companions?: { src: string; name: string }[];
  /** The manifest.json record in Packer's shape. */
  record: PackerManifestBuild;
  /** manifest.json custom_data.accelerator: kvm, tcg, libvirt:<hypervisor>, none. */
  accelerator: string;
  /** Builder facts for custom_data (packer_version, ...). */
  extra: Record<string, unknown>;
}

/** How a build reaches a release's patch bundle. */
export type PatchAccess =
  /** an HTTP server on this machine, seen by the build at `url(port)` */
  | { kind: 'http'; url: (port: number) => string }
  /** the directory itself (Ansible copies it into a remote VM) */
  | { kind: 'directory' }
  /** none: the build applies no bundle (an installer carries release R's image as it is) */
  | { kind: 'none' };

export interface Builder {
  readonly type: BuilderType;
  /** Programs this builder runs on this machine (checked in preflight, with apt hints). */
  readonly tools: readonly string[];
  /**
   * Does it start from osbake's host-made vanilla disk? always (chroot); distro — when the distro's
   * Packer templates use one (Distro.vanilla === 'host'); never (a hypervisor's volume).
   */
  readonly vanilla: 'always' | 'distro' | 'never';
  readonly patchAccess: PatchAccess;
  /** The artifact's file name extension in the store. */
  readonly artifactExt: 'qcow2' | 'raw';
  /** Does the pipeline boot-test the artifact (unless --no-test)? A disk image yes, a stick no. */
  readonly bootTest: boolean;
  /** Checks of the build's inputs that need none of its tools: run first (bad input before a missing tool). */
  checkInputs?(job: BuildJob): Promise<void>;
  /** Checks before any slow work: versions, hosts, permissions. No side effects but the work dir. */
  preflight(job: BuildJob): Promise<void>;
  /** The steps between the vanilla disk and post-processing. */
  steps(job: BuildJob): BuilderStep[];
  /** Available after the steps succeeded. */
  output(): BuilderOutput;
  /** One line for the build summary: "TCG", "libvirt on h1", "chroot". */
  describe(): string;
}

/** The variables every provisioning run gets, whichever builder runs it (Ansible extra vars). */
export function provisionVariables(
  job: Pick<BuildJob, 'project' | 'image' | 'distro' | 'release' | 'gitCommit' | 'artifact' | 'workDir'>,
  patchRepoUrl: string,
): Record<string, string> {
  return {
    ...job.distro.buildVariables(job.project, job.image),
    osbake_image: job.image.name,
    osbake_artifact: job.artifact,
    osbake_release: job.release,
    osbake_git_commit: job.gitCommit,
    packages_file: `${job.workDir}/packages.tsv`,
    [job.distro.packageState.variable]: `${job.workDir}/${job.distro.packageState.file}`,
    patch_repo_url: patchRepoUrl,
  };
}

/** Whether this build needs the host-made vanilla disk (pure). */
export function needsHostVanilla(b: Pick<Builder, 'vanilla'>, distro: Pick<Distro, 'vanilla'>): boolean {
  return b.vanilla === 'always' || (b.vanilla === 'distro' && distro.vanilla === 'host');
}
