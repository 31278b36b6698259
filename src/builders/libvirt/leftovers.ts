/**
 * What a killed libvirt build left on a hypervisor, found by osbake's own marks only: domains with
 * osbake metadata (whose build process is gone), and volumes named by osbake that no live build
 * uses (an overlay whose build is gone, a vanilla upload without its completion marker). Anything
 * without osbake's metadata or naming is never touched. planHypervisorClean is pure.
 */
import { hostname } from 'node:os';
import type { Hypervisor } from '../../config/project.js';
import type { Logger } from '../../log/logger.js';
import { type DomainMeta, isOsbakeVolume, OSBAKE_NS, parseDomainMeta } from './domain.js';
import { deleteVolume, listVolumes, type VirshContext, virsh } from './virsh.js';

export interface LiveDomainFact {
  name: string;
  meta: DomainMeta;
  /** Its build process still runs (this machine) or may run (another machine, recently). */
  ownerAlive: boolean;
}

export interface VolumeFact {
  name: string;
  /** Seconds since the volume's file last changed (vol-dumpxml timestamps). */
  ageS: number;
}

export interface HypervisorFacts {
  hypervisor: string;
  domains: LiveDomainFact[];
  volumes: VolumeFact[];
  /** Build ids (first 8 characters) of builds on this machine whose osbake process still runs. */
  liveLocalBuilds: Set<string>;
  /** Build ids (first 8 characters) this machine recorded, live or not. */
  knownLocalBuilds: Set<string>;
}

export interface HypervisorCleanAction {
  kind: 'domain' | 'volume' | 'hypervisor';
  hypervisor: string;
  name: string;
  why: string;
}

/** A volume nobody on this machine knows about is someone else's until it has rested this long. */
export const FOREIGN_VOLUME_S = 3600;

const buildIdOfVolume = (v: string) => /^osbake-build-(.+)\.qcow2$/.exec(v)?.[1];
const vanillaHashOf = (v: string) => /^osbake-vanilla-([0-9a-f]{16})\.(qcow2|complete)$/.exec(v)?.[1];

export function planHypervisorClean(f: HypervisorFacts): HypervisorCleanAction[] {
  const out: HypervisorCleanAction[] = [];
  const inUse = new Set<string>();
  for (const d of f.domains) {
    if (d.ownerAlive) {
      for (const v of d.meta.volumes) inUse.add(v);
      continue;
    }
    out.push({
      kind: 'domain',
      hypervisor: f.hypervisor,
      name: d.name,
      why: `build ${d.meta.buildId.slice(0, 8)} of ${d.meta.image} (pid ${d.meta.pid} on ${d.meta.machine}) is gone`,
    });
  }
  const names = new Set(f.volumes.map((v) => v.name));
  for (const v of f.volumes) {
    if (!isOsbakeVolume(v.name) || inUse.has(v.name)) continue;
    const id = buildIdOfVolume(v.name);
    if (id !== undefined) {
      if (f.liveLocalBuilds.has(id.slice(0, 8))) continue;
      const ours = f.knownLocalBuilds.has(id.slice(0, 8));
      if (!ours && v.ageS < FOREIGN_VOLUME_S) continue;
      out.push({
        kind: 'volume',
        hypervisor: f.hypervisor,
        name: v.name,
        why: ours
          ? `overlay of build ${id.slice(0, 8)}, whose osbake is gone`
          : `overlay of a build unknown here, unchanged for ${Math.round(v.ageS / 60)} min`,
      });
      continue;
    }
    const hash = vanillaHashOf(v.name);
    if (hash && v.name.endsWith('.qcow2') && !names.has(`osbake-vanilla-${hash}.complete`)) {
      // An upload in progress writes all the time: only a resting one is a leftover.
      if (v.ageS < 600) continue;
      out.push({
        kind: 'volume',
        hypervisor: f.hypervisor,
        name: v.name,
        why: 'vanilla upload that never finished (no completion marker)',
      });
    }
  }
  return out;
}

/** Seconds since a volume's file changed, from `virsh vol-dumpxml` (<mtime>). */
export function volumeAgeS(xml: string, nowMs: number): number {
  const m = /<mtime>(\d+)(?:\.\d+)?<\/mtime>/.exec(xml);
  return m ? Math.max(0, Math.round(nowMs / 1000 - Number(m[1]))) : 0;
}

/** Read the hypervisor: osbake's domains (with their metadata) and volumes. */
export async function gatherHypervisorFacts(
  h: Hypervisor,
  o: {
    log: Logger;
    liveLocalBuilds: Set<string>;
    knownLocalBuilds: Set<string>;
    isAlive: (pid: number) => boolean;
    maxBuildS: number;
  },
): Promise<HypervisorFacts> {
  const c: VirshContext = { hypervisor: h, log: o.log };
  const list = await virsh(c, ['list', '--all', '--name']);
  const domains: LiveDomainFact[] = [];
  const here = hostname();
  for (const name of list.stdout.split('\n').map((l) => l.trim())) {
    if (!name.startsWith('osbake-')) continue;
    const r = await virsh(c, ['metadata', name, '--uri', OSBAKE_NS], { okCodes: [1] });
    const meta = r.exitCode === 0 ? parseDomainMeta(r.stdout) : undefined;
    if (!meta) continue;
    const ageS = (Date.now() - Date.parse(meta.created)) / 1000;
    const ownerAlive =
      meta.machine === here ? o.isAlive(meta.pid) : !(Number.isFinite(ageS) && ageS > o.maxBuildS);
    domains.push({ name, meta, ownerAlive });
  }
  const volumes: VolumeFact[] = [];
  for (const name of await listVolumes(c)) {
    if (!isOsbakeVolume(name)) continue;
    const xml = await virsh(c, ['vol-dumpxml', '--pool', h.pool, name], { okCodes: [1] });
    volumes.push({ name, ageS: volumeAgeS(xml.stdout, Date.now()) });
  }
  return {
    hypervisor: h.name,
    domains,
    volumes,
    liveLocalBuilds: o.liveLocalBuilds,
    knownLocalBuilds: o.knownLocalBuilds,
  };
}

export async function applyHypervisorClean(
  h: Hypervisor,
  a: HypervisorCleanAction,
  log: Logger,
): Promise<void> {
  const c: VirshContext = { hypervisor: h, log };
  if (a.kind === 'hypervisor') return;
  if (a.kind === 'domain') {
    // Transient domains vanish when destroyed; a defined one (osbake never defines one) is left defined.
    await virsh(c, ['destroy', a.name], { okCodes: [1] });
    return;
  }
  await deleteVolume(c, a.name);
}
