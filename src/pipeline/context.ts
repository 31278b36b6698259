/** What the steps of one `osbake build` share. Builder-specific state stays in the builder. */
import type { PackageRecord } from '../artifacts/package-list.js';
import type { AcceleratorChoice } from '../builders/accel.js';
import type { BootTestResult } from '../builders/boot-test/boot-test.js';
import type { Builder, BuildJob } from '../builders/builder.js';
import type { PackerManifestBuild } from '../config/builds.js';
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { Distro } from '../distros/distro.js';
import type { Provenance } from '../git/provenance.js';
import type { Logger } from '../log/logger.js';
import type { Progress } from '../log/progress.js';
import type { CreatedBundle } from '../patches/bundle.js';
import type { RepoServer } from '../patches/repo-server.js';
import type { BuildPlan, BuildRequest } from './build.js';
import type { VanillaResult } from './vanilla.js';

export interface BuildContext {
  project: Project;
  image: ImageDefinition;
  distro: Distro;
  req: BuildRequest;
  plan: BuildPlan;
  prov: Provenance;
  log: Logger;
  progress: Progress;
  signal: AbortSignal;
  startedAt: number;
  /** The builder: a disk image's (chroot, qemu, libvirt) or an installer's. */
  builder: Builder;
  /** Why this builder (auto: the KVM probe's answer). */
  builderReason: string;
  /** The build as its builder sees it (vanilla disk, patch repository, accelerator). */
  job: BuildJob;
  accel?: AcceleratorChoice;
  vanilla?: VanillaResult;
  artifactPath?: string;
  packagesFile?: string;
  packageStateFile?: string;
  sha256?: string;
  size?: number;
  packages?: PackageRecord[];
  published: string[];
  /** --release R with a patch bundle: the server the build fetches it from. */
  patchServer?: RepoServer;
  appliedBundle?: { id: string; sha256: string; packages: number };
  /** --create-patches: the bundle made after the build. */
  createdBundle?: CreatedBundle;
  /** The boot test's result (recorded in manifest.json custom_data.test). */
  test?: BootTestResult;
  recorded: boolean;
  committed: boolean;
  /** The manifest.json build record (Packer's shape), from the builder. */
  recordAs?: PackerManifestBuild;
  /** manifest.json custom_data.accelerator. */
  recordAccelerator?: string;
  /** Extra manifest.json custom_data. */
  recordExtra?: Record<string, unknown>;
  /** Files published beside the artifact (src → name in builds/), before the artifact itself. */
  extraArtifacts?: { src: string; name: string }[];
}
