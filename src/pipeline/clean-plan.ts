/**
 * What `osbake clean` removes (pure): work directories of builds whose osbake is gone, stale
 * locks, temporary files of atomic writes whose writer is gone, cache entries unused for longer
 * than the limit. A work directory whose owner process still runs is never touched.
 */

export interface WorkDirFact {
  path: string;
  /** The pid recorded by the build that made it (undefined: no owner file, an older osbake). */
  ownerPid?: number;
  ownerAlive: boolean;
  ageMs: number;
  /** Mounts, loop devices and processes still tied to it (left by a killed build). */
  mounts: string[];
  loops: string[];
  processes: number[];
}

export interface LockFact {
  /** The lock directory (<file>.lock). */
  path: string;
  ownerPid?: number;
  ownerAlive: boolean;
  ageMs: number;
}

export interface TempFact {
  path: string;
  pid: number;
  pidAlive: boolean;
}

export interface CacheFact {
  path: string;
  /** Since the entry was last used (its mtime; a build that reuses it touches it). */
  unusedMs: number;
}

export interface CleanFacts {
  workDirs: WorkDirFact[];
  locks: LockFact[];
  temps: TempFact[];
  cache: CacheFact[];
}

export type CleanAction =
  | { kind: 'work-dir'; path: string; mounts: string[]; loops: string[]; processes: number[]; why: string }
  | { kind: 'lock'; path: string; why: string }
  | { kind: 'temp'; path: string; why: string }
  | { kind: 'cache'; path: string; why: string };

/** A work dir without an owner file counts as abandoned after this long. */
export const UNOWNED_WORK_DIR_MS = 24 * 3_600_000;
/** A lock without a live owner and not refreshed for this long is stale. */
export const STALE_LOCK_MS = 5 * 60_000;

const days = (ms: number) => `${(ms / 86_400_000).toFixed(1)} days`;

export function planClean(f: CleanFacts, cacheOlderThanMs: number): CleanAction[] {
  const out: CleanAction[] = [];
  for (const w of f.workDirs) {
    if (w.ownerAlive) continue;
    if (w.ownerPid === undefined && w.ageMs < UNOWNED_WORK_DIR_MS) continue;
    out.push({
      kind: 'work-dir',
      path: w.path,
      mounts: w.mounts,
      loops: w.loops,
      processes: w.processes,
      why:
        w.ownerPid !== undefined ? `its build (pid ${w.ownerPid}) is gone` : `no owner, ${days(w.ageMs)} old`,
    });
  }
  for (const l of f.locks) {
    if (l.ownerAlive) continue;
    if (l.ownerPid !== undefined)
      out.push({ kind: 'lock', path: l.path, why: `its holder (pid ${l.ownerPid}) is gone` });
    else if (l.ageMs > STALE_LOCK_MS)
      out.push({ kind: 'lock', path: l.path, why: 'not refreshed for minutes' });
  }
  for (const t of f.temps) {
    if (!t.pidAlive) out.push({ kind: 'temp', path: t.path, why: `its writer (pid ${t.pid}) is gone` });
  }
  for (const c of f.cache) {
    if (c.unusedMs > cacheOlderThanMs)
      out.push({ kind: 'cache', path: c.path, why: `unused for ${days(c.unusedMs)}` });
  }
  return out;
}

/** "30d", "12h", "90m" → milliseconds (undefined when malformed). */
export function parseAge(text: string): number | undefined {
  const m = /^(\d+)([dhm])$/.exec(text);
  if (!m) return undefined;
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
  return Number(m[1]) * unit;
}
