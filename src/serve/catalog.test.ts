import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog } from './catalog.js';
import { renderIndexPage } from './page.js';

describe('a bare store (no manifests): nothing invented', () => {
  let store = '';
  beforeAll(async () => {
    store = await mkdtemp(join(tmpdir(), 'osbake-catalog-'));
    await mkdir(join(store, 'builds'), { recursive: true });
    await writeFile(join(store, 'builds/img-r1-main-0123abcd.qcow2'), 'qcow2 bytes');
  });
  afterAll(async () => {
    await rm(store, { recursive: true, force: true });
  });

  it('a build without a .sha256 has no checksum (null in the API, "unknown" on the page)', async () => {
    const c = await loadCatalog({ storeDir: store });
    const b = c.builds.find((x) => x.artifact === 'img-r1-main-0123abcd');
    expect(b?.sha256).toBeNull();
    const html = renderIndexPage(c);
    expect(html).toContain('>unknown</span>');
    expect(html).not.toContain('0'.repeat(64));
  });

  it('a symlink to a build is another name for it, not another build', async () => {
    await symlink('img-r1-main-0123abcd.qcow2', join(store, 'builds/img-latest.qcow2'));
    const c = await loadCatalog({ storeDir: store });
    expect(c.builds.map((b) => b.artifact)).toEqual(['img-r1-main-0123abcd']);
  });

  it('with a .sha256 beside it, that checksum', async () => {
    const sum = 'a'.repeat(64);
    await writeFile(
      join(store, 'builds/img-r1-main-0123abcd.qcow2.sha256'),
      `${sum}  img-r1-main-0123abcd.qcow2\n`,
    );
    const c = await loadCatalog({ storeDir: store });
    expect(c.builds.find((x) => x.artifact === 'img-r1-main-0123abcd')?.sha256).toBe(sum);
  });
});
