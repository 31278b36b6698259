import { describe, expect, it } from 'vitest';
import { parsePackageList } from '../artifacts/package-list.js';
import { isSshTimeout } from '../builders/packer/packer-builder.js';
import { BuildEntrySchema } from '../config/builds.js';
import { ImageConfigSchema } from '../config/image.js';
import { ProjectConfigSchema } from '../config/project.js';
import { parseReleaseName } from '../config/releases.js';
import { buildManifestEntry, planBuild } from './build.js';
import { missingTools } from './steps/preflight.js';

const project = {
  root: '/p',
  file: '/p/osbake.yaml',
  config: ProjectConfigSchema.parse({}),
  storeDir: '/p/store',
  workDir: '/p/.osbake',
  outDir: '/p/out',
};
const image = {
  name: 'debian12-base',
  dir: '/p/images/debian12-base',
  file: '/p/images/debian12-base/image.yaml',
  config: ImageConfigSchema.parse({ name: 'debian12-base', distro: 'debian' }),
  templateDir: '/p/images/debian12-base',
  manifestFile: '/p/images/debian12-base/manifest.json',
};
const prov = {
  branch: 'main',
  commit: 'f'.repeat(40),
  shortCommit: 'ffffffff',
  dirty: false,
  dirtyPaths: [],
};

describe('planBuild', () => {
  it('names the artifact, log and work dir', () => {
    const plan = planBuild(
      project,
      image,
      prov,
      { release: parseReleaseName('2026.11') },
      'qcow2',
      '12345678-aaaa',
    );
    expect(plan).toMatchObject({
      artifact: 'debian12-base-2026.11-main-ffffffff',
      artifactFile: 'debian12-base-2026.11-main-ffffffff.qcow2',
      logFile: expect.stringMatching(/^\/p\/out\/debian12-base-ffffffff-[0-9a-f]{8}\.log$/),
      workDir: '/p/.osbake/work/debian12-base-12345678',
      storeBuildsDir: '/p/store/builds',
    });
  });

  it('marks dirty trees', () => {
    expect(
      planBuild(project, image, { ...prov, dirty: true }, { release: parseReleaseName('r') }).artifact,
    ).toMatch(/-dirty$/);
  });
});

describe('buildManifestEntry', () => {
  it('produces a valid Packer-shaped entry with osbake custom_data', () => {
    const plan = planBuild(project, image, prov, { release: parseReleaseName('r1') });
    const e = buildManifestEntry({
      plan,
      prov,
      packer: {
        name: 'debian12-base',
        builder_type: 'qemu',
        build_time: 1,
        files: null,
        artifact_id: 'VM',
        packer_run_uuid: 'u',
      },
      sha256: 'a'.repeat(64),
      size: 123,
      packageCount: 300,
      durationS: 61.234,
      accelerator: 'tcg',
    });
    expect(BuildEntrySchema.parse(e)).toEqual(e);
    expect(e.files).toEqual([{ name: plan.artifactFile, size: 123 }]);
    expect(e.custom_data).toMatchObject({
      release: 'r1',
      git_branch: 'main',
      git_commit: prov.commit,
      git_dirty: false,
      package_count: 300,
      duration_s: 61.2,
      accelerator: 'tcg',
      osbake_version: expect.any(String),
    });
  });
});

describe('helpers', () => {
  it('parses the package list', () => {
    expect(parsePackageList('bash\t5.2.15-2+b7\tamd64\njq\t1.6-2.1\tamd64\n\n')).toEqual([
      { name: 'bash', version: '5.2.15-2+b7', arch: 'amd64' },
      { name: 'jq', version: '1.6-2.1', arch: 'amd64' },
    ]);
  });

  it('finds missing tools on PATH', () => {
    const present = new Set(['/usr/bin/packer', '/bin/git']);
    expect(missingTools(['packer', 'git', 'mmdebstrap'], '/usr/bin:/bin', (p) => present.has(p))).toEqual([
      'mmdebstrap',
    ]);
  });

  it('recognises an SSH timeout', () => {
    expect(isSshTimeout(["Build 'qemu.x' errored after 5 minutes: Timeout waiting for SSH."])).toBe(true);
    expect(isSshTimeout(['ansible-playbook failed'])).toBe(false);
  });
});
