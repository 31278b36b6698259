/** One module per distribution behind this interface (as mkosi's mkosi/distribution/*.py). */
import type { ImageDefinition } from '../config/image.js';
import type { Project } from '../config/project.js';
import type { Logger } from '../log/logger.js';

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
}

export interface Distro {
  name: string;
  /** Everything that determines the vanilla disk's content; hashed to key the cache. */
  vanillaInputs(project: Project, image: ImageDefinition): Record<string, unknown>;
  /** Build the vanilla disk as a qcow2 at `dest` (the caller renames it into the cache). */
  bootstrapVanilla(ctx: BootstrapContext, dest: string): Promise<void>;
  /** Ansible/Packer variables this distro hands the build (mirrors etc.). */
  buildVariables(project: Project, image: ImageDefinition): Record<string, string>;
  /** Directory under the store's repos/ for this distro's patch bundles (Debian12, Rocky8). */
  repoDirName(image: ImageDefinition): string;
}
