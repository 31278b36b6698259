import { describe, expect, it } from 'vitest';
import { type CleanFacts, parseAge, planClean, STALE_LOCK_MS, UNOWNED_WORK_DIR_MS } from './clean-plan.js';

const facts = (f: Partial<CleanFacts>): CleanFacts => ({
  workDirs: [],
  locks: [],
  temps: [],
  cache: [],
  ...f,
});
const wd = { mounts: [], loops: [], processes: [] };

describe('planClean', () => {
  it('never touches a work dir whose build still runs, and takes an orphan with its mounts', () => {
    const a = planClean(
      facts({
        workDirs: [
          { path: '/w/live', ownerPid: 10, ownerAlive: true, ageMs: 9e9, ...wd, mounts: ['/w/live/root'] },
          {
            path: '/w/dead',
            ownerPid: 11,
            ownerAlive: false,
            ageMs: 1000,
            ...wd,
            mounts: ['/w/dead/root/proc', '/w/dead/root'],
            loops: ['/dev/loop3'],
          },
          { path: '/w/old', ownerAlive: false, ageMs: UNOWNED_WORK_DIR_MS + 1, ...wd },
          { path: '/w/young', ownerAlive: false, ageMs: 1000, ...wd },
        ],
      }),
      1e12,
    );
    expect(a.map((x) => [x.kind, x.path, x.why])).toEqual([
      ['work-dir', '/w/dead', 'its build (pid 11) is gone'],
      ['work-dir', '/w/old', 'no owner, 1.0 days old'],
    ]);
    expect(a[0]).toMatchObject({ mounts: ['/w/dead/root/proc', '/w/dead/root'], loops: ['/dev/loop3'] });
  });

  it('removes locks of dead holders and unowned stale ones, temps of dead writers, old cache entries', () => {
    const a = planClean(
      facts({
        locks: [
          { path: '/p/m.json.lock', ownerPid: 5, ownerAlive: false, ageMs: 10 },
          { path: '/p/live.lock', ownerPid: 6, ownerAlive: true, ageMs: 9e9 },
          { path: '/p/old.lock', ownerAlive: false, ageMs: STALE_LOCK_MS + 1 },
          { path: '/p/new.lock', ownerAlive: false, ageMs: 10 },
        ],
        temps: [
          { path: '/s/.r.json.partial-7-1', pid: 7, pidAlive: false },
          { path: '/s/.r.json.partial-8-1', pid: 8, pidAlive: true },
        ],
        cache: [
          { path: '/c/old.qcow2', unusedMs: 31 * 86_400_000 },
          { path: '/c/new.qcow2', unusedMs: 86_400_000 },
        ],
      }),
      parseAge('30d') as number,
    );
    expect(a.map((x) => `${x.kind} ${x.path}`)).toEqual([
      'lock /p/m.json.lock',
      'lock /p/old.lock',
      'temp /s/.r.json.partial-7-1',
      'cache /c/old.qcow2',
    ]);
  });

  it('reads ages', () => {
    expect(parseAge('30d')).toBe(30 * 86_400_000);
    expect(parseAge('12h')).toBe(12 * 3_600_000);
    expect(parseAge('90m')).toBe(90 * 60_000);
    expect(parseAge('1w')).toBeUndefined();
    expect(parseAge('')).toBeUndefined();
  });
});
