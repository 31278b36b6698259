import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, lockOwner } from './lock.js';

describe('locks between osbake processes', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-lock-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('records its holder, and a waiter says who holds it, then gives up with E_LOCKED', async () => {
    const file = join(dir, 'a');
    const release = await acquireLock(file, { what: 'thing A', waitMs: 1000 });
    expect(lockOwner(file)).toMatchObject({ pid: process.pid, host: hostname() });
    const said: string[] = [];
    // The same process counts as alive: a second taker waits, and names the holder.
    await expect(
      acquireLock(file, { what: 'thing A', waitMs: 600, onWait: (m) => said.push(m) }),
    ).rejects.toMatchObject({
      code: 'E_LOCKED',
      message: expect.stringContaining(`thing A is locked by pid ${process.pid}`),
    });
    expect(said).toEqual([
      expect.stringContaining(`waiting for thing A: locked by pid ${process.pid} on ${hostname()}`),
    ]);
    await release();
    expect(lockOwner(file)).toBeUndefined();
    const again = await acquireLock(file, { what: 'thing A', waitMs: 1000 });
    await again();
  });

  it('takes over at once a fresh lock whose holder process is gone', async () => {
    const file = join(dir, 'b');
    const dead = spawnSync('true').pid as number;
    mkdirSync(`${file}.lock`);
    writeFileSync(
      `${file}.lock-owner`,
      JSON.stringify({ pid: dead, host: hostname(), command: 'build x', since: 'then' }),
    );
    const said: string[] = [];
    const release = await acquireLock(file, {
      what: 'thing B',
      waitMs: 5000,
      staleMs: 60_000,
      onWait: (m) => said.push(m),
    });
    expect(said).toEqual([]);
    expect(lockOwner(file)?.pid).toBe(process.pid);
    await release();
  });
});
