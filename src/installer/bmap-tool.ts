/**
 * Block maps (bmap-tools XML) made by `bmaptool create`. The one place that makes a block map, so
 * a native writer (src/media/bmap.ts) can replace the external tool without touching callers.
 */
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

/** The bmaptool argv (pure). */
export function bmaptoolCreateArgs(image: string, out: string): string[] {
  return ['bmaptool', 'create', '--output', out, image];
}

/** Write the block map of the (sparse) raw `image` to `out`. */
export async function createBmap(
  image: string,
  out: string,
  o: { log: Logger; signal?: AbortSignal },
): Promise<void> {
  await run(bmaptoolCreateArgs(image, out), { log: o.log, signal: o.signal });
}
