/** One module per distribution behind this interface (as mkosi's mkosi/distribution/*.py). */
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { Logger } from '../log/logger.js';
import type { CreatedBundle } from '../patches/bundle.js';
import type { SigningKey } from '../signing/project-keys.js';
import type { OverlayFile } from './vanilla-overlay.js';

export interface BootstrapContext {
  project: Project;
  image: ImageDefinition;
  log: Logger;
  signal: AbortSignal;
  /** Scratch directory for this bootstrap; removed afterwards by the caller. */
  workDir: string;
  /** Report a sub-step ("bootstrapping rootfs", "installing boot loader"). */
  progress: (text: string) => void;
  debug: boolean;
  /**
   * Seeds the disk's identifiers (GPT and partition GUIDs, the root file system's UUID, the ESP's
   * volume id): the vanilla disk's cache key, so the same inputs make the same identifiers.
   */
  seed: string;
}

export interface Distro {
  name: string;
  /** The distro's own checks of image.yaml (suite form, ...): key path and message per problem. */
  checkImage(image: ImageDefinition): { path: string; message: string }[];
  /**
   * Where a Packer build VM's first disk comes from: 'host' — osbake's vanilla disk made on this
   * machine (cached); 'template' — the Packer template installs it (ISO + kickstart) or clones the
   * hypervisor's vanilla volume. The chroot builder always starts from the host-made one.
   */
  vanilla: 'host' | 'template';
  /** Everything that determines the vanilla disk's content; hashed to key the cache. */
  vanillaInputs(project: Project, image: ImageDefinition): Record<string, unknown>;
  /** Programs bootstrapVanilla runs (checked in preflight when the build needs the vanilla disk). */
  vanillaTools: readonly string[];
  /** Refuse before any work what a vanilla bootstrap cannot be made from (mirrors, ...). */
  checkBootstrap(project: Project, image: ImageDefinition): void;
  /** Build the vanilla disk as a qcow2 at `dest` (the caller renames it into the cache). */
  bootstrapVanilla(ctx: BootstrapContext, dest: string): Promise<void>;
  /**
   * Files placed in the image while a chroot builder provisions it, removed afterwards: what keeps
   * package scripts from starting services there (Debian: /usr/sbin/policy-rc.d exiting 101).
   */
  chrootGuards: Record<string, OverlayFile>;
  /** Ansible/Packer variables this distro hands the build (mirrors etc.). */
  buildVariables(project: Project, image: ImageDefinition): Record<string, string>;
  /** The file the image's cleanup role downloads its package database state to (for --create-patches). */
  packageState: { variable: string; file: string };
  /** --create-patches: refuse before any work what the bundle cannot be made from (UserError). */
  checkPatchSources(project: Project, image: ImageDefinition): void;
  /** --create-patches: every newer package for the image's installed state, as an offline repository. */
  createPatchBundle(i: PatchBundleInput): Promise<CreatedBundle>;
  /** Directory under the store's repos/ for this distro's patch bundles (Debian12, Rocky8). */
  repoDirName(image: ImageDefinition): string;
  /** Distribution name and version recorded in the SBOM (purl type follows the name). */
  sbomDistro(image: ImageDefinition): { distro: string; version: string; purlType: string };
}

export interface PatchBundleInput {
  project: Project;
  image: ImageDefinition;
  /** The package-manager state the image's cleanup role fetched (packageState.file). */
  stateFile: string;
  /** Scratch directory of this bundle. */
  workDir: string;
  /** Bundle id: <artifact>-patches. */
  id: string;
  artifact: string;
  /** The project key: the bundle's repository index is signed with it (apt InRelease, rpm repomd.xml.asc). */
  signingKey?: SigningKey;
  log: Logger;
  signal: AbortSignal;
  onDetail: (text: string) => void;
}
