/**
 * `osbake clean [--dry-run] [--cache-older-than 30d] [--json]`: what killed builds and writers
 * leave behind — work directories (with their mounts, loop devices and processes), stale locks,
 * temporary files of atomic writes — and cache entries unused for long. Facts are gathered here,
 * the decision is clean-plan.ts (pure), then the actions run (unless --dry-run).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { processesRootedIn } from '../builders/chroot/mount.js';
import { isPartialName } from '../config/atomic.js';
import { isAlive, ownerAlive, ownerFileOfLockDir, readOwnerFile } from '../config/lock.js';
import { loadProject, type Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import { createNullLogger } from '../log/logger.js';
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
import { WORK_OWNER_FILE } from './steps/preflight.js';

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

async function findLockDirs(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) for (const f of await ls(d)) if (f.endsWith('.lock')) out.push(join(d, f));
  return out;
}

async function gatherFacts(project: Project): Promise<CleanFacts> {
  const work = join(project.workDir, 'work');
  const workDirs: WorkDirFact[] = [];
  for (const name of await ls(work)) {
    const path = join(work, name);
    const owner = readOwnerFile(join(path, WORK_OWNER_FILE));
    workDirs.push({
      path,
      ownerPid: owner?.pid,
      ownerAlive: ownerAlive(owner),
      ageMs: await ageMs(path),
      mounts: await mountsUnder(path),
      loops: await loopsUnder(path),
      processes: await processesUnder(path),
    });
  }
  const imageDirs = (await ls(join(project.root, 'images'))).map((i) => join(project.root, 'images', i));
  const cacheDirs = [
    join(project.workDir, 'cache', 'vanilla'),
    join(project.workDir, 'cache', 'installer-os'),
    join(project.workDir, 'cache', 'netboot'),
  ];
  const locks: LockFact[] = [];
  for (const path of await findLockDirs([
    project.root,
    ...imageDirs,
    ...cacheDirs,
    join(project.root, '.git'),
  ])) {
    const owner = readOwnerFile(ownerFileOfLockDir(path));
    locks.push({ path, ownerPid: owner?.pid, ownerAlive: ownerAlive(owner), ageMs: await ageMs(path) });
  }
  const temps: TempFact[] = [];
  const store = project.storeDir;
  const tempDirs = [
    project.root,
    ...imageDirs,
    ...cacheDirs,
    join(store, 'builds'),
    join(store, 'releases'),
    join(project.root, '.osbake', 'netboot', 'nodes'),
    ...(await ls(join(store, 'repos'))).map((d) => join(store, 'repos', d)),
  ];
  for (const d of tempDirs) {
    for (const f of await ls(d)) {
      if (!isPartialName(f)) continue;
      const pid = Number(/\.partial-(\d+)/.exec(f)?.[1]);
      temps.push({ path: join(d, f), pid, pidAlive: isAlive(pid) });
    }
  }
  const cache: CacheFact[] = [];
  for (const d of cacheDirs) {
    for (const f of await ls(d)) {
      if (f.endsWith('.json') || f.endsWith('.lock') || f.endsWith('-owner') || isPartialName(f)) continue;
      cache.push({ path: join(d, f), unusedMs: await ageMs(join(d, f)) });
    }
  }
  return { workDirs, locks, temps, cache };
}

async function apply(a: CleanAction): Promise<void> {
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
  if (a.kind === 'lock') {
    await rm(a.path, { recursive: true, force: true });
    await rm(ownerFileOfLockDir(a.path), { force: true });
    return;
  }
  await rm(a.path, { recursive: true, force: true });
  if (a.kind === 'cache' && existsSync(`${a.path}.json`)) await rm(`${a.path}.json`, { force: true });
}

export async function runClean(o: {
  projectDir: string;
  dryRun?: boolean;
  cacheOlderThan?: string;
  json?: boolean;
  out?: Pick<NodeJS.WriteStream, 'write'>;
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
  const actions = planClean(await gatherFacts(project), limit);
  const done: (CleanAction & { result: string })[] = [];
  for (const a of actions) {
    if (o.dryRun) {
      done.push({ ...a, result: 'would remove' });
      continue;
    }
    try {
      await apply(a);
      done.push({ ...a, result: 'removed' });
    } catch (err) {
      done.push({ ...a, result: `FAILED: ${(err as Error).message}` });
    }
  }
  if (o.json) out.write(`${JSON.stringify(done, null, 2)}\n`);
  else if (done.length === 0) out.write('nothing to clean\n');
  else {
    out.write(
      formatTable(
        ['WHAT', 'PATH', 'WHY', 'RESULT'],
        done.map((a) => [
          a.kind === 'work-dir' && (a.mounts.length || a.loops.length || a.processes.length)
            ? `work-dir (+${a.mounts.length} mounts, ${a.loops.length} loops, ${a.processes.length} processes)`
            : a.kind,
          a.path,
          a.why,
          a.result,
        ]),
      ),
    );
  }
  const failed = done.filter((a) => a.result.startsWith('FAILED'));
  if (failed.length > 0) {
    throw new UserError(
      'E_CLEAN',
      `${failed.length} item(s) could not be cleaned`,
      'see the table above; run as root',
    );
  }
  return actions;
}
