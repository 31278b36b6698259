/**
 * Exclusive locks between osbake processes (proper-lockfile's mkdir lock), with the holder written
 * inside the lock: a waiter says within seconds which lock and who holds it; a lock whose holder
 * process is gone (same host) is broken at once instead of after the stale time; giving up, or
 * losing the lock to a stalled holder, is a user error naming the lock, never a stack trace.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import lockfile from 'proper-lockfile';
import { UserError } from '../errors.js';
import { disown, own } from '../fsx/owned.js';

export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface LockOptions {
  /** What the lock protects, for messages ("the vanilla disk cache entry debian-bookworm-…"). */
  what: string;
  /** How long to wait for another holder before giving up. */
  waitMs: number;
  /** Called once when the lock is found held (after the first failed try). */
  onWait?: (message: string) => void;
  /** proper-lockfile's stale time: a lock not refreshed for this long is broken. */
  staleMs?: number;
}

const lockDir = (path: string) => `${path}.lock`;
/** Beside the lock directory (proper-lockfile removes the directory with rmdir: it must stay empty). */
const ownerFile = (path: string) => `${path}.lock-owner`;

/** Who holds the lock at path, if it says (pure read; undefined when unknown). */
export function lockOwner(path: string): LockOwner | undefined {
  return readOwnerFile(ownerFile(path));
}

/** The owner file of the lock whose directory is lockPath (<file>.lock → <file>.lock-owner). */
export function ownerFileOfLockDir(lockPath: string): string {
  return `${lockPath}-owner`;
}

/** This process as the owner of something (a lock, a build's work directory). */
export function currentOwner(): LockOwner {
  return {
    pid: process.pid,
    host: hostname(),
    command: process.argv.slice(2, 5).join(' ') || 'osbake',
    since: new Date().toISOString(),
  };
}

/** Is the owner a live process of this host? (another host's: assumed alive) */
export function ownerAlive(o: LockOwner | undefined): boolean {
  if (!o) return false;
  return o.host !== hostname() || isAlive(o.pid);
}

export function readOwnerFile(file: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeOwner(o: LockOwner | undefined): string {
  return o ? `pid ${o.pid} on ${o.host} (${o.command}, since ${o.since})` : 'another process';
}

/** Take the lock; resolves to its release function. */
export async function acquireLock(path: string, o: LockOptions): Promise<() => Promise<void>> {
  const deadline = Date.now() + o.waitMs;
  let compromised: Error | undefined;
  let told = false;
  for (;;) {
    try {
      const release = await lockfile.lock(path, {
        realpath: false,
        stale: o.staleMs ?? 30_000,
        update: Math.min(10_000, (o.staleMs ?? 30_000) / 3),
        retries: 0,
        onCompromised: (err) => {
          compromised = err;
        },
      });
      const owner = currentOwner();
      own(lockDir(path), 'lock');
      try {
        writeFileSync(ownerFile(path), JSON.stringify(owner));
        own(ownerFile(path), 'lock');
      } catch {
        // the lock still holds; only the "who" is missing
      }
      return async () => {
        disown(lockDir(path));
        disown(ownerFile(path));
        if (compromised) {
          throw new UserError(
            'E_LOCK_LOST',
            `the lock on ${o.what} was taken over while osbake held it (${compromised.message})`,
            'another osbake process thought this one had stalled; check for two builds of the same thing and rerun',
          );
        }
        rmSync(ownerFile(path), { force: true });
        await release().catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ERELEASED' && err.code !== 'ENOTACQUIRED') throw err;
        });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      const owner = lockOwner(path);
      if (owner && owner.host === hostname() && owner.pid !== process.pid && !isAlive(owner.pid)) {
        // Its holder is gone (killed): age the lock so proper-lockfile takes it over as stale now,
        // rather than after the stale time (its own takeover handles racing waiters).
        await utimes(lockDir(path), 0, 0).catch(() => undefined);
        continue;
      }
      if (!told) {
        told = true;
        o.onWait?.(`waiting for ${o.what}: locked by ${describeOwner(owner)}`);
      }
      if (Date.now() > deadline) {
        throw new UserError(
          'E_LOCKED',
          `${o.what} is locked by ${describeOwner(owner)}`,
          `wait for that process to finish (or end it); the lock is ${lockDir(path)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    }
  }
}
