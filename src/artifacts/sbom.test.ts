import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSbom, debianPurl, writeSbom } from './sbom.js';

const input = {
  image: 'debian12-base',
  artifact: 'debian12-base-2026.11-main-1a2b3c4d',
  sha256: 'a'.repeat(64),
  distro: 'debian',
  purlType: 'deb',
  distroVersion: '12',
  packages: [
    { name: 'openssl', version: '3.0.13-1~deb12u1', arch: 'amd64' },
    { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
    { name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' },
    { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
  ],
  timestamp: new Date('2026-11-25T10:00:00Z'),
};

interface Sbom {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  version: number;
  metadata: {
    timestamp: string;
    component: { type: string; name: string; version: string; hashes: { alg: string; content: string }[] };
    tools: { components: { name: string }[] };
  };
  components: { type: string; name: string; version: string; purl: string; 'bom-ref': string }[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}

describe('CycloneDX SBOM', () => {
  it.each([
    [
      { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
      'pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12',
    ],
    [
      { name: 'libc6', version: '2.36-9', arch: 'i386' },
      'pkg:deb/debian/libc6@2.36-9?arch=i386&distro=debian-12',
    ],
    [
      { name: 'perl', version: '1:5.36.0-7', arch: 'amd64' },
      'pkg:deb/debian/perl@1%3A5.36.0-7?arch=amd64&distro=debian-12',
    ],
    [
      { name: 'libstdc++6', version: '12.2.0-14', arch: 'amd64' },
      'pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12',
    ],
  ])('purl of %j', (p, purl) => {
    expect(debianPurl(p, '12')).toBe(purl);
  });

  it('describes the image as an operating-system with its SHA-256 and each package with a purl', () => {
    const sbom = buildSbom(input) as Sbom;
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.specVersion).toBe('1.6');
    expect(sbom.version).toBe(1);
    expect(sbom.serialNumber).toMatch(
      /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(sbom.metadata.timestamp).toBe('2026-11-25T10:00:00.000Z');
    expect(sbom.metadata.component).toMatchObject({
      type: 'operating-system',
      name: 'debian12-base',
      version: input.artifact,
      hashes: [{ alg: 'SHA-256', content: 'a'.repeat(64) }],
    });
    expect(sbom.metadata.tools.components.map((c) => c.name)).toEqual(['osbake']);
    expect(sbom.components).toHaveLength(3);
    for (const c of sbom.components) {
      expect(c.type).toBe('library');
      expect(c.purl).toBe(
        `pkg:deb/debian/${c.name}@${encodeURIComponent(c.version)}?arch=${c.name === 'tzdata' ? 'all' : 'amd64'}&distro=debian-12`,
      );
      expect(c['bom-ref']).toBe(c.purl);
    }
    const root = sbom.dependencies.find((d) => d.ref === input.artifact);
    expect(root?.dependsOn?.sort()).toEqual(sbom.components.map((c) => c.purl).sort());
  });

  it('gives every SBOM its own serial number', () => {
    const a = buildSbom(input) as Sbom;
    const b = buildSbom(input) as Sbom;
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect({ ...a, serialNumber: '' }).toEqual({ ...b, serialNumber: '' });
  });

  it('writes the file atomically as JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-sbom-'));
    const file = join(dir, 'builds', `${input.artifact}.cdx.json`);
    const sbom = buildSbom(input);
    await writeSbom(file, sbom);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(sbom);
    expect(await readdir(join(dir, 'builds'))).toEqual([`${input.artifact}.cdx.json`]);
  });
});
