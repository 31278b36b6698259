/** osbake burn as a user meets it without a drive: help, the listing, and one line + hint per bad input. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../integration/helpers.js';

describe('osbake burn (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-burn-e2e-'));
    await writeFile(join(dir, 'disk.raw'), Buffer.alloc(8192, 1));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--help has examples', async () => {
    const r = await runCli(['burn', '--help'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: osbake burn \[options\] \[image\] \[devices...\]/);
    expect(r.stdout).toMatch(/Examples:\n {2}osbake burn /);
  });

  it('lists the disks of this machine, as a table and as JSON', async () => {
    const r = await runCli(['burn'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^DEVICE +SIZE +MODEL +SERIAL +TRAN +BURN\n/);
    const j = await runCli(['burn', '--json'], dir);
    const rows = JSON.parse(j.stdout) as { path: string; refusals: string[] }[];
    expect(Array.isArray(rows)).toBe(true);
    for (const row of rows) expect(row.path).toMatch(/^\/dev\//);
  });

  it.each([
    [
      ['disk.raw', '/dev/osbake-no-such-disk'],
      /no block device \/dev\/osbake-no-such-disk/,
      /hint: osbake burn \(without arguments\)/,
    ],
    [
      ['disk.raw', '/dev/null', '--holes', 'sometimes'],
      /--holes sometimes is not one of auto, zero, keep/,
      /hint: /,
    ],
    [
      ['disk.raw', '/dev/null', '--force', 'readonly'],
      /--force readonly: this check cannot be skipped/,
      /hint: it protects this machine's disks; checks that --force can skip/,
    ],
    [
      ['/dev/sda'],
      /osbake burn needs an image before the device \(\/dev\/sda\)/,
      /hint: osbake burn <image\|release> <device>/,
    ],
    [
      ['disk.raw'],
      /osbake burn disk\.raw needs the device to write to/,
      /hint: osbake burn <image\|release> <device>/,
    ],
  ])('%j fails with one line and a hint', async (args, msg, hint) => {
    const r = await runCli(['burn', ...args], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).toMatch(hint);
    expect(r.stderr).not.toMatch(/ at .*\.js:\d+/);
  });
});
