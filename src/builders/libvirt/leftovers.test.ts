import { describe, expect, it } from 'vitest';
import { overlayVolumeName } from './domain.js';
import { FOREIGN_VOLUME_S, type HypervisorFacts, planHypervisorClean, volumeAgeS } from './leftovers.js';

const id = (n: string) => `${n}aaaaaaa-0000-4000-8000-000000000000`;
const meta = (buildId: string) => ({
  buildId,
  image: 'debian12-base',
  volumes: [overlayVolumeName(buildId)],
  machine: 'builder',
  pid: 42,
  created: '2026-12-07T05:00:00.000Z',
});
const facts = (over: Partial<HypervisorFacts>): HypervisorFacts => ({
  hypervisor: 'kvm1',
  domains: [],
  volumes: [],
  liveLocalBuilds: new Set(),
  knownLocalBuilds: new Set(),
  ...over,
});

describe('what clean --hypervisor removes', () => {
  it("a dead build's domain and overlay; a live build's are kept", () => {
    const dead = id('1');
    const live = id('2');
    const plan = planHypervisorClean(
      facts({
        domains: [
          { name: `osbake-build-${dead}`, meta: meta(dead), ownerAlive: false },
          { name: `osbake-build-${live}`, meta: meta(live), ownerAlive: true },
        ],
        volumes: [
          { name: overlayVolumeName(dead), ageS: 5 },
          { name: overlayVolumeName(live), ageS: 5 },
        ],
        knownLocalBuilds: new Set([dead.slice(0, 8), live.slice(0, 8)]),
        liveLocalBuilds: new Set([live.slice(0, 8)]),
      }),
    );
    expect(plan.map((a) => `${a.kind} ${a.name}`)).toEqual([
      `domain osbake-build-${dead}`,
      `volume ${overlayVolumeName(dead)}`,
    ]);
  });

  it('an overlay nobody here knows is kept until it has rested an hour', () => {
    const foreign = id('3');
    const young = planHypervisorClean(facts({ volumes: [{ name: overlayVolumeName(foreign), ageS: 60 }] }));
    expect(young).toEqual([]);
    const old = planHypervisorClean(
      facts({ volumes: [{ name: overlayVolumeName(foreign), ageS: FOREIGN_VOLUME_S + 1 }] }),
    );
    expect(old.map((a) => a.why)).toEqual(['overlay of a build unknown here, unchanged for 60 min']);
  });

  it('a vanilla upload without its marker, once it rests; never a complete one or a foreign volume', () => {
    const plan = planHypervisorClean(
      facts({
        volumes: [
          { name: 'osbake-vanilla-0123456789abcdef.qcow2', ageS: 3600 },
          { name: 'osbake-vanilla-fedcba9876543210.qcow2', ageS: 3600 },
          { name: 'osbake-vanilla-fedcba9876543210.complete', ageS: 3600 },
          { name: 'osbake-vanilla-1111111111111111.qcow2', ageS: 30 },
          { name: 'web01.qcow2', ageS: 99_999 },
        ],
      }),
    );
    expect(plan.map((a) => a.name)).toEqual(['osbake-vanilla-0123456789abcdef.qcow2']);
  });

  it('reads a volume age from vol-dumpxml', () => {
    const xml = '<volume><target><timestamps><mtime>1765090000.123</mtime></timestamps></target></volume>';
    expect(volumeAgeS(xml, 1765090100_000)).toBe(100);
    expect(volumeAgeS('<volume/>', 1)).toBe(0);
  });
});
