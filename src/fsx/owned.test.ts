import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { disown, ledgerOf, own, readLedger, stillOwned, useLedger } from './owned.js';

describe('the ledger of what osbake owns', () => {
  const root = mkdtempSync(join(tmpdir(), 'osbake-owned-'));
  afterAll(() => {
    useLedger(undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('records what this process made, keeps it out of git, and forgets it on disown', () => {
    useLedger(ledgerOf(root));
    const f = join(root, '.x.partial-1-1');
    writeFileSync(f, 'x');
    own(f, 'temp');
    const { records, skipped } = readLedger(ledgerOf(root));
    expect(skipped).toEqual([]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ path: f, kind: 'temp', pid: process.pid });
    expect(readFileSync(join(root, '.osbake', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect(stillOwned(records[0] as (typeof records)[0])).toBe(true);
    disown(f);
    expect(readdirSync(ledgerOf(root))).toEqual([]);
  });

  it('a path since replaced by another file is no longer osbake’s; foreign files in the ledger are skipped', () => {
    useLedger(ledgerOf(root));
    const f = join(root, 'made');
    writeFileSync(f, 'a');
    own(f, 'cache');
    rmSync(f);
    writeFileSync(f, 'the user’s');
    const { records } = readLedger(ledgerOf(root));
    expect(stillOwned(records[0] as (typeof records)[0])).toBe(false);
    writeFileSync(join(ledgerOf(root), 'notes.txt'), 'x');
    writeFileSync(join(ledgerOf(root), `${'0'.repeat(32)}.json`), '{"path":"/etc/passwd","ino":1,"pid":1}');
    expect(readLedger(ledgerOf(root)).skipped).toHaveLength(2);
  });

  it('without a ledger (no project) nothing is recorded', () => {
    useLedger(undefined);
    const f = join(root, 'loose');
    writeFileSync(f, 'x');
    own(f, 'temp');
    expect(readLedger(join(root, 'nowhere')).records).toEqual([]);
  });
});
