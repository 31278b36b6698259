/**
 * osbake build --all: every image in dependency order (image.yaml `needs:`), spread over the build
 * hosts with at most one build per host at a time. planSchedule is pure (order, cycles and unknown
 * needs reported as configuration errors); runSchedule takes the function that runs one build on
 * one host, so tests drive it with a recording runner.
 */
import { ConfigError, type ConfigIssue } from '../errors.js';

export interface ScheduleImage {
  name: string;
  needs: string[];
  /** image.yaml, for error messages. */
  file?: string;
}

/** A cycle as "a → b → a", found among images that Kahn's algorithm could not order. */
function findCycle(left: Map<string, ScheduleImage>): string[] {
  const start = [...left.keys()].sort()[0] as string;
  const path: string[] = [];
  let cur = start;
  while (!path.includes(cur)) {
    path.push(cur);
    const next = (left.get(cur)?.needs ?? []).filter((n) => left.has(n)).sort()[0];
    if (next === undefined) break;
    cur = next;
  }
  return [...path.slice(path.indexOf(cur)), cur];
}

/** Topological order; among images ready at the same time, alphabetical (stable, reproducible). */
export function planSchedule(images: ScheduleImage[]): string[] {
  const byName = new Map(images.map((i) => [i.name, i]));
  const issues: ConfigIssue[] = [];
  for (const img of images) {
    for (const n of img.needs) {
      if (!byName.has(n)) {
        issues.push({
          file: img.file ?? img.name,
          path: 'needs',
          message: `"${n}" is not an image (known: ${[...byName.keys()].sort().join(', ')})`,
        });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const done = new Set<string>();
  const order: string[] = [];
  const left = new Map(byName);
  for (;;) {
    const ready = [...left.values()]
      .filter((i) => i.needs.every((n) => done.has(n)))
      .map((i) => i.name)
      .sort();
    if (ready.length === 0) break;
    for (const r of ready) {
      order.push(r);
      done.add(r);
      left.delete(r);
    }
  }
  if (left.size > 0) {
    const cycle = findCycle(left);
    throw new ConfigError([
      {
        file: left.get(cycle[0] as string)?.file ?? (cycle[0] as string),
        path: 'needs',
        message: `dependency cycle: ${cycle.join(' → ')}; remove one of these needs`,
      },
    ]);
  }
  return order;
}

export interface ScheduleHost {
  name: string;
}

export type ScheduleStatus = 'built' | 'failed' | 'skipped';

export interface ScheduleOutcome {
  image: string;
  status: ScheduleStatus;
  /** The host that ran it (absent when skipped). */
  host?: string;
  error?: unknown;
  /** Why it was skipped: the dependency that did not build. */
  blockedBy?: string;
}

export interface ScheduleHooks<H> {
  onStart?: (image: string, host: H) => void;
  onEnd?: (o: ScheduleOutcome) => void;
  /**
   * Is this failure the host's, not the image's (down, key refused, no pool)? Then the host takes
   * no more builds and the image goes back to the queue for the others.
   */
  hostFailed?: (error: unknown) => boolean;
  onHostDown?: (host: H, error: unknown) => void;
}

/**
 * Run the images in `order` on `hosts` (a host with N slots is listed N times under one name): an
 * image starts once everything it needs has built, on the first free slot; a failed image's
 * dependents are skipped, independent images go on. A host that fails as a host (hooks.hostFailed)
 * is dropped and its image requeued; with no host left the rest fail. Resolves with one outcome
 * per image, in `order`.
 */
export async function runSchedule<H extends ScheduleHost>(
  images: ScheduleImage[],
  hosts: H[],
  runBuildOn: (host: H, image: string) => Promise<void>,
  hooks: ScheduleHooks<H> = {},
  signal?: AbortSignal,
): Promise<ScheduleOutcome[]> {
  if (hosts.length === 0) throw new Error('runSchedule: no build hosts');
  const order = planSchedule(images);
  const needs = new Map(images.map((i) => [i.name, i.needs]));
  const outcomes = new Map<string, ScheduleOutcome>();
  const pending = [...order];
  const free = [...hosts];
  const running = new Map<string, Promise<void>>();

  // A requeued image goes back to its place in the order.
  const pendingIndexOf = (img: string) => {
    const at = order.indexOf(img);
    const i = pending.findIndex((p) => order.indexOf(p) > at);
    return i < 0 ? pending.length : i;
  };
  const finish = (o: ScheduleOutcome) => {
    outcomes.set(o.image, o);
    hooks.onEnd?.(o);
  };

  const down = new Map<string, unknown>();
  for (;;) {
    // Skip everything whose dependency failed or was skipped (transitively, in order).
    for (const img of [...pending]) {
      const bad = (needs.get(img) ?? []).find((n) => {
        const s = outcomes.get(n)?.status;
        return s === 'failed' || s === 'skipped';
      });
      if (bad !== undefined || signal?.aborted) {
        pending.splice(pending.indexOf(img), 1);
        finish({ image: img, status: 'skipped', blockedBy: bad ?? 'interrupted' });
      }
    }
    // No host left: what is still queued fails with the last host's reason.
    if (running.size === 0 && free.length === 0 && pending.length > 0) {
      const why = [...down.values()].at(-1);
      // Those that could start fail; their dependents are skipped on the next round.
      const ready = pending.filter((i) =>
        (needs.get(i) ?? []).every((n) => outcomes.get(n)?.status === 'built'),
      );
      for (const img of ready.length > 0 ? ready : [...pending]) {
        pending.splice(pending.indexOf(img), 1);
        finish({ image: img, status: 'failed', error: why });
      }
      continue;
    }
    // Start ready images on free hosts.
    for (const img of [...pending]) {
      if (free.length === 0) break;
      if (!(needs.get(img) ?? []).every((n) => outcomes.get(n)?.status === 'built')) continue;
      const host = free.shift() as H;
      pending.splice(pending.indexOf(img), 1);
      hooks.onStart?.(img, host);
      const p = runBuildOn(host, img).then(
        () => finish({ image: img, status: 'built', host: host.name }),
        (error: unknown) => {
          if (hooks.hostFailed?.(error) && !signal?.aborted) {
            if (!down.has(host.name)) hooks.onHostDown?.(host, error);
            down.set(host.name, error);
            for (let i = free.length - 1; i >= 0; i--) if (free[i]?.name === host.name) free.splice(i, 1);
            pending.splice(pendingIndexOf(img), 0, img);
            return;
          }
          finish({ image: img, status: 'failed', host: host.name, error });
        },
      );
      running.set(
        img,
        p.finally(() => {
          running.delete(img);
          if (!down.has(host.name)) free.push(host);
        }),
      );
    }
    if (running.size === 0) {
      if (pending.length === 0 || free.length > 0) break;
      continue;
    }
    await Promise.race(running.values());
  }
  return order.map((i) => outcomes.get(i) as ScheduleOutcome);
}
