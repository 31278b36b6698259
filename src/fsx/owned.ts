/**
 * What osbake owns: every lock, temporary file, work directory and cache entry osbake creates is
 * recorded here (a small JSON file per item in the project's ledger, <project>/.osbake/owned/)
 * with the identity of what was made (device + inode) and who made it; `osbake clean` deletes
 * only recorded items whose identity still matches — never by name pattern or age alone, so a
 * user's `flake.lock`, a `*.tmp` or another project's work directory in a shared workDir stays.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';

export type OwnedKind = 'lock' | 'temp' | 'work-dir' | 'cache';

export interface OwnedRecord {
  path: string;
  kind: OwnedKind;
  dev: number;
  ino: number;
  /** Birth time (ms, sub-ms precision): an inode number can be reused by a new file; this cannot. */
  born?: number;
  pid: number;
  host: string;
  created: string;
}

let ledger: string | undefined;

/** Where this process records what it creates (set once the project is known). */
export function useLedger(dir: string | undefined): void {
  ledger = dir;
}

export function currentLedger(): string | undefined {
  return ledger;
}

/** The ledger of a project (pure). */
export function ledgerOf(projectRoot: string): string {
  return join(projectRoot, '.osbake', 'owned');
}

function recordName(path: string): string {
  return `${createHash('sha256').update(path).digest('hex').slice(0, 32)}.json`;
}

/**
 * Record that this process created `path` (call right after creating it). Without a ledger (no
 * project) nothing is recorded — and so nothing of it will ever be cleaned by osbake.
 */
export function own(path: string, kind: OwnedKind): void {
  if (!ledger) return;
  try {
    const st = lstatSync(path);
    const rec: OwnedRecord = {
      path,
      kind,
      dev: st.dev,
      ino: st.ino,
      born: st.birthtimeMs,
      pid: process.pid,
      host: hostname(),
      created: new Date().toISOString(),
    };
    mkdirSync(ledger, { recursive: true });
    // osbake's own state under the project (.osbake/): never part of the git tree, so never what
    // makes it dirty ("*" in a .gitignore of its own, as pytest and mypy keep their caches).
    const ignore = join(dirname(ledger), '.gitignore');
    if (!existsSync(ignore))
      writeFileSync(ignore, '# osbake state (ledger, node records): not part of the repository\n*\n');
    const file = join(ledger, recordName(path));
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec));
    renameSync(tmp, file);
  } catch {
    // Unrecorded means "not osbake's": never cleaned. Recording must not fail the real work.
  }
}

/** Forget `path` (it was removed, renamed into place, or handed over). */
export function disown(path: string): void {
  if (!ledger) return;
  rmSync(join(ledger, recordName(path)), { force: true });
}

/** Every record of a ledger; unreadable or foreign files in it are skipped (and listed). */
export function readLedger(dir: string): { records: (OwnedRecord & { file: string })[]; skipped: string[] } {
  const records: (OwnedRecord & { file: string })[] = [];
  const skipped: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { records, skipped };
  }
  for (const n of names) {
    const file = join(dir, n);
    if (!/^[0-9a-f]{32}\.json$/.test(n)) {
      skipped.push(file);
      continue;
    }
    try {
      const st = lstatSync(file);
      if (!st.isFile() || st.size > 64 * 1024) throw new Error('not a record');
      const r = JSON.parse(readFileSync(file, 'utf8')) as OwnedRecord;
      if (typeof r.path !== 'string' || typeof r.ino !== 'number' || typeof r.pid !== 'number') {
        throw new Error('not a record');
      }
      if (recordName(r.path) !== n) throw new Error('name does not match its path');
      records.push({ ...r, file });
    } catch {
      skipped.push(file);
    }
  }
  return { records, skipped };
}

/** Is the thing at r.path still the one osbake made (same device, inode and birth time)? */
export function stillOwned(r: Pick<OwnedRecord, 'path' | 'dev' | 'ino' | 'born'>): boolean {
  try {
    const st = lstatSync(r.path);
    const bornSame = !r.born || !st.birthtimeMs || st.birthtimeMs === r.born;
    return st.dev === r.dev && st.ino === r.ino && bornSame;
  } catch {
    return false;
  }
}
