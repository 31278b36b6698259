/** The vanilla disk cache: keyed by a hash of the distro's inputs, built once, reused after. */
import { existsSync } from 'node:fs';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashInputs } from '../artifacts/checksum.js';
import { placeFileAtomic } from '../artifacts/store.js';
import type { ImageDefinition } from '../config/image.js';
import { acquireLock } from '../config/lock.js';
import type { Project } from '../config/project.js';
import type { Distro } from '../distros/distro.js';
import { own } from '../fsx/owned.js';
import type { Logger } from '../log/logger.js';

/** Bump when the way osbake assembles vanilla disks changes, so old cache entries are not reused. */
// 3: the vanilla disk no longer carries the time it was made (ESP label entry, initrd entries).
export const VANILLA_FORMAT = 3;

export function vanillaKey(distro: Distro, project: Project, image: ImageDefinition): string {
  return hashInputs({ format: VANILLA_FORMAT, ...distro.vanillaInputs(project, image) }).slice(0, 16);
}

export function vanillaPath(project: Project, image: ImageDefinition, key: string): string {
  return join(
    project.workDir,
    'cache',
    'vanilla',
    `${image.config.distro}-${image.config.suite}-${key}.qcow2`,
  );
}

export interface VanillaResult {
  path: string;
  key: string;
  cached: boolean;
}

/** Return the cached vanilla disk, or build it (under a lock so parallel builds do it once). */
export async function ensureVanillaDisk(o: {
  distro: Distro;
  project: Project;
  image: ImageDefinition;
  log: Logger;
  signal: AbortSignal;
  scratchDir: string;
  progress: (t: string) => void;
  debug: boolean;
}): Promise<VanillaResult> {
  const key = vanillaKey(o.distro, o.project, o.image);
  const path = vanillaPath(o.project, o.image, key);
  if (existsSync(path)) {
    // Marks the entry as used (osbake clean removes entries unused for long).
    await utimes(path, new Date(), new Date()).catch(() => undefined);
    return { path, key, cached: true };
  }
  await mkdir(join(o.project.workDir, 'cache', 'vanilla'), { recursive: true });
  // Another build may be bootstrapping the same disk (minutes): wait for it, saying whose it is.
  const release = await acquireLock(path, {
    what: `the vanilla disk ${path}`,
    waitMs: 30 * 60_000,
    staleMs: 60_000,
    onWait: o.progress,
  });
  try {
    if (existsSync(path)) return { path, key, cached: true };
    const scratch = join(o.scratchDir, 'vanilla');
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    try {
      const built = join(scratch, 'vanilla.qcow2');
      await o.distro.bootstrapVanilla(
        {
          project: o.project,
          image: o.image,
          log: o.log,
          signal: o.signal,
          workDir: scratch,
          progress: o.progress,
          debug: o.debug,
          seed: key,
        },
        built,
      );
      await writeFile(
        `${path}.json`,
        `${JSON.stringify({ key, created: new Date().toISOString(), inputs: o.distro.vanillaInputs(o.project, o.image) }, null, 2)}\n`,
      );
      own(`${path}.json`, 'cache');
      await placeFileAtomic(built, path, true);
      own(path, 'cache');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    return { path, key, cached: false };
  } finally {
    await release();
  }
}
