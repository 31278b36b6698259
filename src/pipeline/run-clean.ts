import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { processesRootedIn } from '../builders/chroot/mount.js';
import {
  applyHypervisorClean,
  gatherHypervisorFacts,
  type HypervisorCleanAction,
  planHypervisorClean,
} from '../builders/libvirt/leftovers.js';
import { checkLibvirtHost } from '../builders/libvirt/preflight.js';
import { isAlive, ownerAlive, ownerFileOfLockDir, readOwnerFile } from '../config/lock.js';
import { durationToMs, type Hypervisor, loadProject, type Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import { ledgerOf, readLedger, stillOwned } from '../fsx/owned.js';
import { createNullLogger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import {
  type CacheFact,
  type CleanAction,
  type CleanFacts,
  type LockFact,
  parseAge,
  planClean,
  type TempFact,
  type WorkDirFact,
} from './clean-plan.js';

const log = createNullLogger();

async function ls(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

async function ageMs(path: string): Promise<number> {
  const s = await stat(path).catch(() => undefined);
  return s ? Date.now() - s.mtimeMs : 0;
}

/** Mount points at or below dir, deepest first (/proc/self/mountinfo, octal escapes undone). */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) =>
      (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) =>
        String.fromCharCode(Number.parseInt(o, 8)),
      ),
    )
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

async function loopsUnder(dir: string): Promise<string[]> {
  const out = await capture(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE'], {
    log,
  }).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, back]) => back?.startsWith(`${dir}/`))
    .map(([name]) => name as string);
}

/** Processes inside a chroot of dir, or whose command line names it (a QEMU of a killed build). */
async function processesUnder(dir: string): Promise<number[]> {
  const pids = new Set(await processesRootedIn(dir));
  for (const pid of await ls('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.split('\0').some((a) => a.includes(`${dir}/`))) pids.add(Number(pid));
  }
  return [...pids];
}

/**
 * The facts come from the project's ledger only (fsx/owned.ts): what osbake recorded when it made
 * it, and that is still the same file or directory (device + inode). Nothing is found by name.
 */
async function gatherFacts(project: Project): Promise<CleanFacts & { records: Map<string, string> }> {
  const { records } = readLedger(ledgerOf(project.root));
  const host = hostname();
  const workDirs: WorkDirFact[] = [];
  const locks: LockFact[] = [];
  const temps: TempFact[] = [];
  const cache: CacheFact[] = [];
  const recordOf = new Map<string, string>();
  const gone: string[] = [];
  const alive = (pid: number, h: string) => h !== host || isAlive(pid);
  for (const r of records) {
    if (!stillOwned(r)) {
      gone.push(r.file);
      continue;
    }
    recordOf.set(r.path, r.file);
    const pidAlive = alive(r.pid, r.host);
    if (r.kind === 'work-dir') {
      workDirs.push({
        path: r.path,
        ownerPid: r.pid,
        ownerAlive: pidAlive,
        ageMs: await ageMs(r.path),
        mounts: await mountsUnder(r.path),
        loops: await loopsUnder(r.path),
        processes: await processesUnder(r.path),
      });
    } else if (r.kind === 'lock') {
      if (r.path.endsWith('.lock-owner')) continue; // removed with its lock
      const owner = readOwnerFile(ownerFileOfLockDir(r.path));
      locks.push({
        path: r.path,
        ownerPid: owner?.pid ?? r.pid,
        ownerAlive: owner ? ownerAlive(owner) : pidAlive,
        ageMs: await ageMs(r.path),
      });
    } else if (r.kind === 'temp') {
      temps.push({ path: r.path, pid: r.pid, pidAlive });
    } else if (!r.path.endsWith('.json') || !records.some((o) => `${o.path}.json` === r.path)) {
      cache.push({ path: r.path, unusedMs: await ageMs(r.path) });
    }
  }
  // Records of things that are gone (or were replaced by something else) are dropped.
  for (const f of gone) await rm(f, { force: true });
  return { workDirs, locks, temps, cache, records: recordOf };
}

async function apply(a: CleanAction, records: Map<string, string>): Promise<void> {
  await removeOwned(a);
  for (const p of [a.path, `${a.path}.json`, ownerFileOfLockDir(a.path)]) {
    const rec = records.get(p);
    if (!rec) continue;
    if (p !== a.path) await rm(p, { recursive: true, force: true });
    await rm(rec, { force: true });
  }
}

async function removeOwned(a: CleanAction): Promise<void> {
  if (a.kind === 'work-dir') {
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of a.processes) {
        try {
          process.kill(pid, sig);
        } catch {
          // gone
        }
      }
      if (a.processes.length > 0) await new Promise((r) => setTimeout(r, 1000));
    }
    for (const m of a.mounts)
      await run(['umount', m], { log }).catch(() => run(['umount', '--lazy', m], { log }));
    for (const l of a.loops) {
      await run(['partx', '--delete', l], { log }).catch(() => undefined);
      await run(['losetup', '--detach', l], { log });
    }
    if ((await mountsUnder(a.path)).length > 0) throw new Error(`${a.path} still has mounts`);
    await rm(a.path, { recursive: true, force: true });
    return;
  }
  await rm(a.path, { recursive: true, force: true });
}

/** Build ids (8 characters) of this project's work directories: all, and those whose osbake runs. */
function localBuilds(facts: CleanFacts): { live: Set<string>; known: Set<string> } {
  const id8 = (p: string) => /-([0-9a-f]{8})$/.exec(basename(p))?.[1];
  const known = new Set<string>();
  const live = new Set<string>();
  for (const w of facts.workDirs) {
    const id = id8(w.path);
    if (!id) continue;
    known.add(id);
    if (w.ownerAlive) live.add(id);
  }
  return { live, known };
}

/** The hypervisors --hypervisor names (a name, or all). */
function hypervisorsOf(project: Project, name: string): Hypervisor[] {
  const all = project.config.hypervisors;
  const picked = name === 'all' ? all : all.filter((h) => h.name === name);
  if (picked.length === 0) {
    throw new UserError(
      'E_NO_HYPERVISOR',
      `no hypervisor named "${name}" in ${project.file}`,
      `configured hypervisors: ${all.map((h) => h.name).join(', ') || 'none'}; or --hypervisor all`,
    );
  }
  return picked;
}

interface Row {
  what: string;
  path: string;
  why: string;
  result: string;
}

/** The leftovers of killed libvirt builds on the hypervisors (domains, overlays, partial uploads). */
async function cleanHypervisors(
  project: Project,
  name: string,
  facts: CleanFacts,
  dryRun: boolean,
): Promise<(HypervisorCleanAction & { result: string })[]> {
  const { live, known } = localBuilds(facts);
  const done: (HypervisorCleanAction & { result: string })[] = [];
  for (const h of hypervisorsOf(project, name)) {
    let hf: Awaited<ReturnType<typeof gatherHypervisorFacts>>;
    try {
      await checkLibvirtHost(h, { log });
      hf = await gatherHypervisorFacts(h, {
        log,
        liveLocalBuilds: live,
        knownLocalBuilds: known,
        isAlive,
        maxBuildS: durationToMs(project.config.builder.buildTimeout) / 1000 + 3600,
      });
    } catch (err) {
      // One unreachable host does not stop the others; it is reported and the exit code says so.
      const why = (err as Error).message.split('\n')[0] ?? '';
      done.push({
        kind: 'hypervisor',
        hypervisor: h.name,
        name: '',
        why: 'not reachable',
        result: `FAILED: ${why}`,
      });
      continue;
    }
    for (const a of planHypervisorClean(hf)) {
      if (dryRun) {
        done.push({ ...a, result: 'would remove' });
        continue;
      }
      try {
        await applyHypervisorClean(h, a, log);
        done.push({ ...a, result: 'removed' });
      } catch (err) {
        done.push({ ...a, result: `FAILED: ${(err as Error).message.split('\n')[0]}` });
      }
    }
  }
  return done;
}

export async function runClean(o: {
  projectDir: string;
  /** Also the leftovers on this hypervisor (or all). */
  hypervisor?: string;
  dryRun?: boolean;
  cacheOlderThan?: string;
  json?: boolean;
  out?: TextOut;
}): Promise<CleanAction[]> {
  const out = o.out ?? process.stdout;
  const limit = parseAge(o.cacheOlderThan ?? '30d');
  if (limit === undefined) {
    throw new UserError(
      'E_USAGE',
      `--cache-older-than ${o.cacheOlderThan} is not an age`,
      'e.g. 30d, 12h or 90m',
    );
  }
  const project = await loadProject(o.projectDir);
  if (o.hypervisor !== undefined) hypervisorsOf(project, o.hypervisor);
  const facts = await gatherFacts(project);
  // The hypervisors first: whether a remote build is still ours is judged from the local records.
  const remote =
    o.hypervisor === undefined ? [] : await cleanHypervisors(project, o.hypervisor, facts, Boolean(o.dryRun));
  const actions = planClean(facts, limit);
  const done: (CleanAction & { result: string })[] = [];
  for (const a of actions) {
    if (o.dryRun) {
      done.push({ ...a, result: 'would remove' });
      continue;
    }
    try {
      await apply(a, facts.records);
      done.push({ ...a, result: 'removed' });
    } catch (err) {
      done.push({ ...a, result: `FAILED: ${(err as Error).message}` });
    }
  }
  const rows: Row[] = [
    ...remote.map((a) => ({ what: a.kind, path: `${a.hypervisor}:${a.name}`, why: a.why, result: a.result })),
    ...done.map((a) => ({
      what:
        a.kind === 'work-dir' && (a.mounts.length || a.loops.length || a.processes.length)
          ? `work-dir (+${a.mounts.length} mounts, ${a.loops.length} loops, ${a.processes.length} processes)`
          : a.kind,
      path: a.path,
      why: a.why,
      result: a.result,
    })),
  ];
  if (o.json) out.write(`${JSON.stringify([...remote, ...done], null, 2)}\n`);
  else if (rows.length === 0) out.write('nothing to clean\n');
  else {
    out.write(
      formatTable(
        ['WHAT', 'PATH', 'WHY', 'RESULT'],
        rows.map((r) => [r.what, r.path, r.why, r.result]),
      ),
    );
  }
  const failed = rows.filter((a) => a.result.startsWith('FAILED'));
  if (failed.length > 0) {
    throw new UserError(
      'E_CLEAN',
      `${failed.length} item(s) could not be cleaned`,
      'see the table above; run as root',
    );
  }
  return actions;
}
