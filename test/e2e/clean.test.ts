/**
 * osbake clean deletes by ownership only: user files named like osbake's leftovers survive in every
 * place clean ever looked; what osbake recorded in the project's ledger and left behind (its
 * process gone) goes, and --dry-run lists exactly that.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, runCli, SHARED_WORK_DIR, type TempProject } from '../integration/helpers.js';

/** The pid of a process that has exited (so: dead). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']);
  return Number(r.stdout.toString().trim());
}

/** A ledger record as osbake writes it (fsx/owned.ts), for a thing a killed osbake left. */
function recordOwned(project: string, path: string, kind: string, pid: number): void {
  const ledger = join(project, '.osbake', 'owned');
  mkdirSync(ledger, { recursive: true });
  const st = statSync(path);
  const name = `${createHash('sha256').update(path).digest('hex').slice(0, 32)}.json`;
  writeFileSync(
    join(ledger, name),
    JSON.stringify({
      path,
      kind,
      dev: st.dev,
      ino: st.ino,
      born: st.birthtimeMs,
      pid,
      host: hostname(),
      created: new Date().toISOString(),
    }),
  );
}

describe('osbake clean deletes only what osbake recorded as its own', () => {
  let project: TempProject;
  const old = new Date(Date.now() - 400 * 86_400_000);
  const planted: string[] = [];
  const plant = (path: string, dir = false) => {
    if (dir) mkdirSync(path, { recursive: true });
    else writeFileSync(path, 'user data\n');
    planted.push(path);
  };
  beforeAll(async () => {
    project = await makeProject();
  });
  afterAll(async () => {
    await project.cleanup();
    for (const f of planted) rmSync(f, { recursive: true, force: true });
  });

  it('user files named like osbake’s (old and new, files and directories) survive in every place', async () => {
    const p = project.dir;
    const work = join(SHARED_WORK_DIR, 'work');
    mkdirSync(work, { recursive: true });
    const places = [
      p,
      join(p, 'images', 'debian12-base'),
      join(p, 'store', 'builds'),
      join(p, 'store', 'releases'),
      join(p, '.osbake', 'netboot', 'nodes'),
      join(SHARED_WORK_DIR, 'cache', 'vanilla'),
      join(SHARED_WORK_DIR, 'cache', 'installer-os'),
      join(SHARED_WORK_DIR, 'cache', 'netboot'),
    ];
    const tag = `clean-test-${process.pid}`;
    for (const d of places) {
      mkdirSync(d, { recursive: true });
      plant(join(d, `flake-${tag}.lock`));
      plant(join(d, `requirements-${tag}.lock`, ''), true);
      plant(join(d, `.notes-${tag}.txt.partial-1-1`));
      plant(join(d, `.data-${tag}.partial-2`), true);
      plant(join(d, `x-${tag}.tmp`));
    }
    plant(join(work, `work-${tag}-old`), true);
    plant(join(work, `debian12-base-${tag}`), true);
    writeFileSync(
      join(work, `debian12-base-${tag}`, '.osbake-owner'),
      JSON.stringify({ pid: deadPid(), host: hostname() }),
    );
    plant(join(SHARED_WORK_DIR, 'cache', 'vanilla', `debian-${tag}.qcow2`));
    for (const f of planted) utimesSync(f, old, old);

    const dry = await runCli(['clean', '--dry-run', '--cache-older-than', '1m', '--json'], p);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).filter((a: { path: string }) => a.path.includes(tag))).toEqual([]);
    const r = await runCli(['clean', '--cache-older-than', '1m'], p);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const f of planted) expect(existsSync(f), f).toBe(true);
  });

  it('what osbake recorded and left behind goes; --dry-run lists exactly that; a replaced path stays', async () => {
    const p = project.dir;
    const dead = deadPid();
    const lock = join(p, 'images', 'debian12-base', 'manifest.json.lock');
    mkdirSync(lock);
    recordOwned(p, lock, 'lock', dead);
    const temp = join(p, '.osbake.yaml.partial-99999-1');
    writeFileSync(temp, 'half');
    recordOwned(p, temp, 'temp', dead);
    const wdir = join(SHARED_WORK_DIR, 'work', `debian12-base-owned-${process.pid}`);
    mkdirSync(wdir, { recursive: true });
    recordOwned(p, wdir, 'work-dir', dead);
    // Recorded, but since replaced by a user's file of the same name: not osbake's any more.
    const replaced = join(p, '.replaced.partial-99999-2');
    writeFileSync(replaced, 'old');
    recordOwned(p, replaced, 'temp', dead);
    rmSync(replaced);
    writeFileSync(replaced, 'the user’s now');
    // Recorded by a live process (this test): stays.
    const live = join(p, '.live.partial-1-1');
    writeFileSync(live, 'being written');
    recordOwned(p, live, 'temp', process.pid);

    const dry = await runCli(['clean', '--dry-run', '--json'], p);
    expect(dry.code, dry.stderr).toBe(0);
    const listed = (JSON.parse(dry.stdout) as { path: string; kind: string }[]).map((a) => a.path).sort();
    expect(listed).toEqual([lock, temp, wdir].sort());
    expect(existsSync(lock) && existsSync(temp) && existsSync(wdir)).toBe(true);

    const r = await runCli(['clean'], p);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect([lock, temp, wdir].filter((f) => existsSync(f))).toEqual([]);
    expect(existsSync(replaced) && existsSync(live)).toBe(true);
    // The records of what went (and of what is no longer osbake's) are gone; the live one stays.
    expect(readdirSync(join(p, '.osbake', 'owned'))).toHaveLength(1);
  });
});
