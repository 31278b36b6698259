import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import { ensureCacheDir } from './cache-dir.js';

describe('ensureCacheDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'osbake-cachedir-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const base = (name: string) => ({
    dir: join(root, 'cache', 'kind', name),
    marker: 'done',
    what: `the test entry ${name}`,
    scratch: join(root, 'work', name),
    log: createNullLogger(),
    progress: () => undefined,
  });

  it('makes the entry once, whole (marker last), then takes it as it is; scratch is gone', async () => {
    let made = 0;
    const o = {
      ...base('a'),
      make: async (out: string, scratch: string) => {
        made++;
        expect(out.startsWith(scratch)).toBe(true);
        await writeFile(join(out, 'data'), 'bytes');
        await writeFile(join(out, 'done'), '');
      },
    };
    expect(await ensureCacheDir(o)).toEqual({ cached: false });
    expect(await ensureCacheDir(o)).toEqual({ cached: true });
    expect(made).toBe(1);
    expect(readFileSync(join(o.dir, 'data'), 'utf8')).toBe('bytes');
    expect(existsSync(o.scratch)).toBe(false);
  });

  it('leaves no entry when make fails or forgets the marker, and makes it again next time', async () => {
    const o = base('b');
    await expect(
      ensureCacheDir({ ...o, make: async () => Promise.reject(new Error('disk full')) }),
    ).rejects.toThrow('disk full');
    await expect(
      ensureCacheDir({ ...o, make: async (out) => writeFile(join(out, 'data'), 'x') }),
    ).rejects.toThrow(/done was not made/);
    expect(existsSync(o.dir)).toBe(false);
    expect(existsSync(o.scratch)).toBe(false);
    expect(readdirSync(join(root, 'cache', 'kind'))).not.toContain('b');
    const again = await ensureCacheDir({ ...o, make: async (out) => writeFile(join(out, 'done'), '') });
    expect(again).toEqual({ cached: false });
  });

  it('replaces an incomplete entry (no marker: a crash before the rename was not possible, a hand-made one is)', async () => {
    const o = base('c');
    await ensureCacheDir({ ...o, make: async (out) => writeFile(join(out, 'done'), '') });
    rmSync(join(o.dir, 'done'));
    await writeFile(join(o.dir, 'stale'), 'old');
    await ensureCacheDir({ ...o, make: async (out) => writeFile(join(out, 'done'), '') });
    expect(readdirSync(o.dir)).toEqual(['done']);
  });
});
