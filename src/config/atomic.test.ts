import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenTempName, isPartialName, writeFileAtomically } from './atomic.js';

describe('writeFileAtomically', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-atomic-'));
  });
  afterAll(async () => {
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('readers never see a partial file while it is rewritten (a plain writeFile fails this)', async () => {
    const file = join(dir, 'manifest.json');
    const versions = ['a', 'b'].map((c) => JSON.stringify({ fill: c.repeat(4 << 20) }));
    await writeFileAtomically(file, versions[0] as string);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 30; i++) await writeFileAtomically(file, versions[i % 2] as string);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const text = await readFile(file, 'utf8');
      expect(versions).toContain(text);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    expect(await readdir(dir)).toEqual(['manifest.json']);
  });

  it('uses hidden temporary names and leaves none behind on failure', async () => {
    expect(hiddenTempName('/s/releases/r1.json')).toMatch(/^\/s\/releases\/\.r1\.json\.partial-\d+-\d+$/);
    expect(isPartialName('.r1.json.partial-123-4')).toBe(true);
    expect(isPartialName('r1.json')).toBe(false);
    const sub = join(dir, 'ro');
    await mkdir(sub);
    await chmod(sub, 0o500);
    if (process.getuid?.() === 0) {
      // root writes anyway: check the cleanup with a target that is a directory instead.
      await mkdir(join(sub, 'target'));
      await expect(writeFileAtomically(join(sub, 'target'), 'x')).rejects.toThrow();
    } else {
      await expect(writeFileAtomically(join(sub, 'target'), 'x')).rejects.toThrow(/EACCES/);
    }
    expect((await readdir(sub)).filter(isPartialName)).toEqual([]);
  });
});
