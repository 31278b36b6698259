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

/** The state of one schedule run: the queue, the free host slots, the builds running, the outcomes. */
interface ScheduleState<H extends ScheduleHost> {
  order: string[];
  needs: Map<string, string[]>;
  outcomes: Map<string, ScheduleOutcome>;
  pending: string[];
  free: H[];
  running: Map<string, Promise<void>>;
  /** Hosts dropped as hosts, with their last error. */
  down: Map<string, unknown>;
  finish(o: ScheduleOutcome): void;
}

const builtAll = <H extends ScheduleHost>(st: ScheduleState<H>, img: string) =>
  (st.needs.get(img) ?? []).every((n) => st.outcomes.get(n)?.status === 'built');

/** Skip everything whose dependency failed or was skipped (transitively, in order), or all after an abort. */
function skipBlocked<H extends ScheduleHost>(st: ScheduleState<H>, signal?: AbortSignal): void {
  for (const img of [...st.pending]) {
    const bad = (st.needs.get(img) ?? []).find((n) => {
      const s = st.outcomes.get(n)?.status;
      return s === 'failed' || s === 'skipped';
    });
    if (bad !== undefined || signal?.aborted) {
      st.pending.splice(st.pending.indexOf(img), 1);
      st.finish({ image: img, status: 'skipped', blockedBy: bad ?? 'interrupted' });
    }
  }
}

/** No host left: the images that could start fail with the last host's reason (or all, if none could). */
function failStranded<H extends ScheduleHost>(st: ScheduleState<H>): void {
  const why = [...st.down.values()].at(-1);
  // Those that could start fail; their dependents are skipped on the next round.
  const ready = st.pending.filter((i) => builtAll(st, i));
  for (const img of ready.length > 0 ? ready : [...st.pending]) {
    st.pending.splice(st.pending.indexOf(img), 1);
    st.finish({ image: img, status: 'failed', error: why });
  }
}

/**
 * Start each ready image on a free slot. A build that fails as its host's failure drops the host
 * (every slot of it) and puts the image back at its place in the order.
 */
function startReady<H extends ScheduleHost>(
  st: ScheduleState<H>,
  runBuildOn: (host: H, image: string) => Promise<void>,
  hooks: ScheduleHooks<H>,
  signal?: AbortSignal,
): void {
  // A requeued image goes back to its place in the order.
  const pendingIndexOf = (img: string) => {
    const at = st.order.indexOf(img);
    const i = st.pending.findIndex((p) => st.order.indexOf(p) > at);
    return i < 0 ? st.pending.length : i;
  };
  for (const img of [...st.pending]) {
    const host = st.free[0];
    if (!host) break;
    if (!builtAll(st, img)) continue;
    st.free.shift();
    st.pending.splice(st.pending.indexOf(img), 1);
    hooks.onStart?.(img, host);
    const p = runBuildOn(host, img).then(
      () => st.finish({ image: img, status: 'built', host: host.name }),
      (error: unknown) => {
        if (hooks.hostFailed?.(error) && !signal?.aborted) {
          if (!st.down.has(host.name)) hooks.onHostDown?.(host, error);
          st.down.set(host.name, error);
          for (let i = st.free.length - 1; i >= 0; i--)
            if (st.free[i]?.name === host.name) st.free.splice(i, 1);
          st.pending.splice(pendingIndexOf(img), 0, img);
          return;
        }
        st.finish({ image: img, status: 'failed', host: host.name, error });
      },
    );
    st.running.set(
      img,
      p.finally(() => {
        st.running.delete(img);
        if (!st.down.has(host.name)) st.free.push(host);
      }),
    );
  }
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
  const outcomes = new Map<string, ScheduleOutcome>();
  const st: ScheduleState<H> = {
    order,
    needs: new Map(images.map((i) => [i.name, i.needs])),
    outcomes,
    pending: [...order],
    free: [...hosts],
    running: new Map(),
    down: new Map(),
    finish(o) {
      outcomes.set(o.image, o);
      hooks.onEnd?.(o);
    },
  };
  for (;;) {
    skipBlocked(st, signal);
    if (st.running.size === 0 && st.free.length === 0 && st.pending.length > 0) {
      failStranded(st);
      continue;
    }
    startReady(st, runBuildOn, hooks, signal);
    if (st.running.size === 0) {
      if (st.pending.length === 0 || st.free.length > 0) break;
      continue;
    }
    await Promise.race(st.running.values());
  }
  return order.map((i) => outcomes.get(i) as ScheduleOutcome);
}
