import { describe, expect, it } from 'vitest';
import type { PackageRecord } from '../artifacts/package-list.js';
import type { BuildEntry } from '../config/builds.js';
import type { Release } from '../config/releases.js';
import { sortReleasesNewestFirst } from '../config/releases.js';
import { assembleCatalog, type CatalogInputs, storeUrl } from './api.js';
import { esc, renderIndexPage, renderListing } from './page.js';

const sha = (c: string) => c.repeat(64);
const C = 'a'.repeat(40);
const pkg = (name: string, version: string): PackageRecord => ({ name, version, arch: 'amd64' });

function build(artifact: string, time: number, release: string, dirty = false): BuildEntry {
  return {
    name: 'img',
    builder_type: 'qemu',
    build_time: time,
    files: [{ name: `${artifact}.qcow2`, size: 10 }],
    artifact_id: 'VM',
    packer_run_uuid: artifact,
    custom_data: {
      release,
      artifact,
      git_branch: 'main',
      git_commit: C,
      git_dirty: dirty,
      sha256: sha('1'),
      size: 10,
      package_count: 2,
      duration_s: 1,
      accelerator: 'tcg',
      osbake_version: '0.1.0',
    },
  };
}

const image = (artifact: string): Release['artifacts'][number] => ({
  name: 'img',
  kind: 'image',
  path: `builds/${artifact}.qcow2`,
  sha256: sha('1'),
  size: 10,
  build: artifact,
  git_commit: C,
});

function inputs(): CatalogInputs {
  return {
    source: 'project',
    releases: [
      { name: '2026.9', release: { date: '2026-09-01', git_commit: C, artifacts: [image('img-a')] } },
      {
        name: '2026.11',
        release: {
          date: '2026-11-01',
          git_commit: C,
          artifacts: [
            image('img-b'),
            { name: 'p 1', kind: 'patch-bundle', path: 'repos/D/p 1.tar.zst', sha256: sha('2'), size: 5 },
          ],
        },
      },
      { name: '2026.10', release: { date: '2026-09-01', git_commit: C, artifacts: [image('img-a')] } },
    ],
    images: [
      {
        image: 'img',
        builds: [
          build('img-a', 100, '2026.9'),
          {
            ...build('img-b', 200, '2026.11'),
            builder_type: 'chroot',
            custom_data: {
              ...build('img-b', 200, '2026.11').custom_data,
              builder: 'chroot',
              test: { passed: true, firmware: 'bios', duration_s: 40, checks: [{ name: 'a', passed: true }] },
            },
          },
          {
            ...build('img-c', 300, '2026.11', true),
            custom_data: { ...build('img-c', 300, '2026.11', true).custom_data, test: { skipped: true } },
          },
        ],
      },
    ],
    packages: new Map([
      ['img-a', [pkg('bash', '5.1'), pkg('curl', '7')]],
      ['img-b', [pkg('bash', '5.2'), pkg('htop', '3')]],
      ['img-c', [pkg('bash', '5.2'), pkg('htop', '3'), pkg('<script>', '1')]],
    ]),
    present: new Set([
      'builds/img-a.qcow2',
      'builds/img-b.qcow2',
      'repos/D/p 1.tar.zst',
      'builds/img-b.packages.tsv',
    ]),
  };
}

describe('assembleCatalog', () => {
  const c = assembleCatalog(inputs());

  it("lists a build by the file its record names: an installer's stick is .raw, not .qcow2", () => {
    const stick: BuildEntry = {
      ...build('usb-r1', 50, '2026.11'),
      name: 'usb',
      builder_type: 'osbake-installer',
      files: [{ name: 'usb-r1.raw', size: 10 }],
    };
    const withStick = assembleCatalog({
      ...inputs(),
      images: [{ image: 'usb', builds: [stick] }],
      present: new Set(['builds/usb-r1.raw']),
    });
    expect(withStick.builds[0]).toMatchObject({
      path: 'builds/usb-r1.raw',
      url: '/builds/usb-r1.raw',
      sha256_url: '/builds/usb-r1.raw.sha256',
      present: true,
    });
  });

  it('orders releases newest first: by date, then by name numerically', () => {
    expect(c.releases.map((r) => r.name)).toEqual(['2026.11', '2026.10', '2026.9']);
    expect(
      sortReleasesNewestFirst([
        { name: '2026.9', release: { date: '2026-01-01' } },
        { name: '2026.10', release: { date: '2026-01-01' } },
      ]).map((r) => r.name),
    ).toEqual(['2026.10', '2026.9']);
  });

  it('gives each artifact its URL, sidecar URL and whether it is in the store', () => {
    const nov = c.releases[0];
    expect(nov?.artifacts[1]).toMatchObject({
      url: '/repos/D/p%201.tar.zst',
      sha256_url: '/repos/D/p%201.tar.zst.sha256',
      present: true,
    });
    expect(storeUrl('builds/a#b?.qcow2')).toBe('/builds/a%23b%3F.qcow2');
  });

  it('diffs each release against the previous one', () => {
    expect(c.releases[0]?.previous).toBe('2026.10');
    expect(c.releases[0]?.diff).toEqual([
      {
        image: 'img',
        a: 'img-a',
        b: 'img-b',
        added: [pkg('htop', '3')],
        removed: [pkg('curl', '7')],
        changed: [{ name: 'bash', arch: 'amd64', from: '5.1', to: '5.2' }],
        unchanged: 0,
      },
    ]);
    expect(c.releases[2]).toMatchObject({ previous: null, diff: null });
  });

  it('lists builds newest first, clean or dirty, compared with the release before them', () => {
    expect(c.builds.map((b) => [b.artifact, b.clean, b.releases, b.diff_base?.release])).toEqual([
      ['img-c', false, [], '2026.11'],
      ['img-b', true, ['2026.11'], '2026.10'],
      ['img-a', true, ['2026.10', '2026.9'], undefined],
    ]);
    expect(c.builds[0]?.diff?.added).toEqual([pkg('<script>', '1')]);
    expect(c.builds[1]).toMatchObject({ packages_url: '/builds/img-b.packages.tsv', present: true });
    expect(c.builds[0]).toMatchObject({
      packages_url: null,
      present: false,
      date: '1970-01-01T00:05:00.000Z',
    });
  });

  it('says which builder made each build and how its boot test went', () => {
    expect(c.builds.map((b) => [b.artifact, b.builder, b.test?.status ?? null])).toEqual([
      ['img-c', 'qemu', 'skipped'],
      ['img-b', 'chroot', 'passed'],
      ['img-a', 'qemu', null],
    ]);
    expect(c.builds[1]?.test).toEqual({ status: 'passed', firmware: 'bios', duration_s: 40, checks: 1 });
  });

  it('has no diff when a package list is missing', () => {
    const i = inputs();
    (i.packages as Map<string, PackageRecord[]>).delete('img-a');
    const c2 = assembleCatalog(i);
    expect(c2.releases[0]?.diff).toBeNull();
    expect(c2.builds[1]?.diff).toBeNull();
  });
});

describe('page', () => {
  it('escapes everything', () => {
    expect(esc(`<a href="x" onclick='y'>&`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;');
    const i = inputs();
    i.releases[1] = {
      name: '2026.11',
      release: { ...(i.releases[1]?.release as Release), date: '2026-11-01' },
    };
    const html = renderIndexPage(assembleCatalog(i), 'mirror <b>');
    expect(html).toContain('<title>mirror &lt;b&gt;</title>');
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toContain('<script>&');
    expect(html.match(/<script>/g)).toHaveLength(1); // only the copy button's
  });

  it('renders releases newest first with copy buttons, and builds with their state', () => {
    const html = renderIndexPage(assembleCatalog(inputs()));
    const order = [...html.matchAll(/data-release="([^"]+)"/g)].map((m) => m[1]);
    expect(order).toEqual(['2026.11', '2026.10', '2026.9']);
    expect(html).toContain(`data-copy="${sha('2')}"`);
    expect(html).toContain('<a href="/repos/D/p%201.tar.zst" download>download</a>');
    expect(html).toMatch(/<td class="dirty">dirty<\/td>/);
    expect(html).toContain('<th>builder</th><th>boot test</th>');
    expect(html).toContain('<td>chroot</td><td class="clean" title="bios, 1 checks">passed</td>');
    expect(html).toContain('<td class="muted">skipped</td>');
    expect(html.match(/<td class="clean">clean<\/td>/g)).toHaveLength(2);
    expect(html).toContain(
      'img vs 2026.10: <span class="add">+1</span> <span class="rm">−1</span> <span class="chg">~1</span>',
    );
    expect(html).toContain('<span class="missing">not in store</span>'); // img-c's qcow2
  });

  it('says so when there is nothing yet', () => {
    const html = renderIndexPage({ source: 'store', releases: [], builds: [], packages: new Map() });
    expect(html).toContain('No release is recorded yet');
    expect(html).toContain('No builds yet');
  });

  it('renders a listing with directories first and encoded links', () => {
    const t = new Date('2026-11-25T10:00:00Z');
    const html = renderListing('/repos/', '/repos/', [
      { name: 'b file.txt', directory: false, size: 2048, mtime: t },
      { name: 'Debian12', directory: true, size: 0, mtime: t },
    ]);
    expect(html.indexOf('Debian12/')).toBeLessThan(html.indexOf('b file.txt'));
    expect(html).toContain('href="/repos/b%20file.txt"');
    expect(html).toContain('2.0 KiB');
    expect(html).toContain('href="../"');
  });
});
