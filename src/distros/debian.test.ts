import { describe, expect, it } from 'vitest';
import { ImageConfigSchema, type ImageDefinition } from '../config/image.js';
import { type Project, ProjectConfigSchema } from '../config/project.js';
import { vanillaKey } from '../pipeline/vanilla.js';
import { buildMmdebstrapArgs, debian, debianSources } from './debian.js';
import { sizeToBytes } from './disk-image.js';

function fixture(projectYaml: object = {}, imageYaml: object = {}) {
  const project: Project = {
    root: '/p',
    file: '/p/osbake.yaml',
    config: ProjectConfigSchema.parse(projectYaml),
    storeDir: '/p/store',
    workDir: '/p/.osbake',
    outDir: '/p/out',
  };
  const config = ImageConfigSchema.parse({ name: 'img', distro: 'debian', ...imageYaml });
  const image: ImageDefinition = {
    name: 'img',
    dir: '/p/images/img',
    file: '/p/images/img/image.yaml',
    config,
    templateDir: '/p/images/img',
    manifestFile: '/p/images/img/manifest.json',
  };
  return { project, image };
}

describe('debian', () => {
  it('gives mmdebstrap all three suites from the configured mirrors', () => {
    const { project } = fixture({
      mirrors: { debian: { main: 'http://m/debian', security: 'http://s/debian-security' } },
    });
    expect(debianSources(project, 'bookworm')).toEqual([
      'deb http://m/debian bookworm main',
      'deb http://m/debian bookworm-updates main',
      'deb http://s/debian-security bookworm-security main',
    ]);
  });

  it('builds the mmdebstrap argv: minbase, packages, host keys removed, empty machine-id', () => {
    const { project, image } = fixture({}, { vanilla: { packages: ['htop'], hooks: ['echo hi'] } });
    const argv = buildMmdebstrapArgs(project, image, '/w/overlay', '/w/rootfs.tar');
    expect(argv.slice(0, 5)).toEqual([
      'mmdebstrap',
      '--variant=minbase',
      '--mode=root',
      '--format=tar',
      expect.stringMatching(/^--include=/),
    ]);
    const include = argv[4]?.replace('--include=', '').split(',') ?? [];
    expect(include).toEqual(
      expect.arrayContaining(['linux-image-amd64', 'openssh-server', 'python3', 'htop']),
    );
    expect(argv).toContain('--customize-hook=sync-in /w/overlay /');
    expect(argv).toContain('--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*');
    expect(argv).toContain('--customize-hook=echo hi');
    expect(argv.slice(-5)).toEqual([
      'bookworm',
      '/w/rootfs.tar',
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
  });

  it('keys the vanilla cache on suite, packages, hooks and mirror — and nothing else', () => {
    const base = fixture();
    const k = vanillaKey(debian, base.project, base.image);
    expect(vanillaKey(debian, fixture({ store: 'elsewhere' }).project, base.image)).toBe(k);
    expect(vanillaKey(debian, base.project, fixture({}, { description: 'changed' }).image)).toBe(k);
    const changed = [
      vanillaKey(debian, base.project, fixture({}, { suite: 'trixie' }).image),
      vanillaKey(debian, base.project, fixture({}, { vanilla: { packages: ['htop'] } }).image),
      vanillaKey(debian, base.project, fixture({}, { vanilla: { hooks: ['true'] } }).image),
      vanillaKey(
        debian,
        fixture({ mirrors: { debian: { main: 'http://other/debian' } } }).project,
        base.image,
      ),
      vanillaKey(debian, fixture({ vm: { diskSize: '16G' } }).project, base.image),
    ];
    expect(new Set([k, ...changed]).size).toBe(changed.length + 1);
  });

  it.each([
    ['8G', 8 * 1024 ** 3],
    ['4096M', 4096 * 1024 ** 2],
  ])('sizeToBytes(%s)', (s, n) => {
    expect(sizeToBytes(s)).toBe(n);
  });
});
