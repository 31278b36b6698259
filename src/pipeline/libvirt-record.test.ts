/** A libvirt build's records: Packer's manifest has "files": null and the volume key as artifact_id. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePackageList } from '../artifacts/package-list.js';
import { buildSbom, rpmPurl } from '../artifacts/sbom.js';
import { BuildEntrySchema, readPackerManifest } from '../config/builds.js';
import { ImageConfigSchema } from '../config/image.js';
import { ProjectConfigSchema } from '../config/project.js';
import { parseReleaseName } from '../config/releases.js';
import { buildManifestEntry, planBuild } from './build.js';

const KEY = '/var/lib/libvirt/images/rocky8-base-r1-main-ffffffff.qcow2';

describe('recording a libvirt build', () => {
  it('reads the plugin manifest and records the downloaded file with the volume key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-lv-rec-'));
    const file = join(dir, 'packer-manifest.json');
    await writeFile(
      file,
      JSON.stringify({
        builds: [
          {
            name: 'rocky8-base',
            builder_type: 'libvirt',
            build_time: 1795629886,
            files: null,
            artifact_id: KEY,
            packer_run_uuid: 'run-2',
            custom_data: null,
          },
        ],
        last_run_uuid: 'run-2',
      }),
    );
    const packer = await readPackerManifest(file);
    expect(packer.files).toBeNull();
    const project = {
      root: '/p',
      file: '/p/osbake.yaml',
      config: ProjectConfigSchema.parse({}),
      storeDir: '/p/store',
      workDir: '/p/.osbake',
      outDir: '/p/out',
    };
    const image = {
      name: 'rocky8-base',
      dir: '/p/images/rocky8-base',
      file: '/p/images/rocky8-base/image.yaml',
      config: ImageConfigSchema.parse({ name: 'rocky8-base', distro: 'rocky', suite: '8.10' }),
      templateDir: '/p/images/rocky8-base',
      manifestFile: '/p/images/rocky8-base/manifest.json',
    };
    const prov = {
      branch: 'main',
      commit: 'f'.repeat(40),
      shortCommit: 'ffffffff',
      dirty: false,
      dirtyPaths: [],
    };
    const plan = planBuild(project, image, prov, { release: parseReleaseName('r1') });
    const e = buildManifestEntry({
      plan,
      prov,
      packer,
      sha256: 'b'.repeat(64),
      size: 42,
      packageCount: 2,
      durationS: 10,
      accelerator: 'libvirt:kvm1',
      extra: { builder: 'libvirt' },
    });
    expect(BuildEntrySchema.parse(e)).toEqual(e);
    expect(e).toMatchObject({
      builder_type: 'libvirt',
      artifact_id: KEY,
      files: [{ name: 'rocky8-base-r1-main-ffffffff.qcow2', size: 42 }],
      custom_data: { accelerator: 'libvirt:kvm1', builder: 'libvirt' },
    });
  });

  it('parses the rpm package list (epoch kept) and gives rpm purls in the SBOM', () => {
    const pkgs = parsePackageList('bash\t4.4.20-5.el8\tx86_64\nperl-libs\t4:5.26.3-422.el8\tx86_64\n');
    expect(pkgs[1]).toEqual({ name: 'perl-libs', version: '4:5.26.3-422.el8', arch: 'x86_64' });
    expect(rpmPurl(pkgs[1] as (typeof pkgs)[number], 'rocky', '8.10')).toBe(
      'pkg:rpm/rocky/perl-libs@4%3A5.26.3-422.el8?arch=x86_64&distro=rocky-8.10',
    );
    const sbom = buildSbom({
      image: 'rocky8-base',
      artifact: 'a',
      sha256: 'c'.repeat(64),
      distro: 'rocky',
      distroVersion: '8.10',
      purlType: 'rpm',
      packages: pkgs,
    }) as { components: { purl: string }[] };
    expect(sbom.components.map((c) => c.purl)).toEqual([
      'pkg:rpm/rocky/bash@4.4.20-5.el8?arch=x86_64&distro=rocky-8.10',
      'pkg:rpm/rocky/perl-libs@4%3A5.26.3-422.el8?arch=x86_64&distro=rocky-8.10',
    ]);
  });
});
