import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, UserError } from '../errors.js';
import { ImageConfigSchema, loadImage } from './image.js';
import { parseYamlConfig } from './load.js';
import { checkProjectDirs, loadProject, ProjectConfigSchema } from './project.js';

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('osbake.yaml', () => {
  it('fills every default from an empty file', () => {
    const cfg = parseYamlConfig('osbake.yaml', '', ProjectConfigSchema);
    expect(cfg.store).toBe('store');
    expect(cfg.mirrors.debian.main).toBe('http://deb.debian.org/debian');
    expect(cfg.mirrors.debian.security).toBe('http://deb.debian.org/debian-security');
    expect(cfg.builder).toMatchObject({ type: 'auto', accelerator: 'auto', retries: 1 });
    expect(cfg.vm).toEqual({ cpus: 2, memory: 2048, diskSize: '8G' });
    expect(cfg.hypervisors).toEqual([]);
  });

  it('reports every problem at once with file, key path and line', () => {
    const text = [
      'store: out/store',
      'mirrors:',
      '  debian:',
      '    main: ftp://nope',
      'builder:',
      '  accelerator: hvf',
      'vm:',
      '  cpus: 0',
      '  diskSize: 8 gigs',
      'hypervisors:',
      '  - name: hv1',
      '    uri: ssh://root@hv1',
      'colour: blue',
    ].join('\n');
    const issues = issuesOf(() => parseYamlConfig('osbake.yaml', text, ProjectConfigSchema));
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        '',
        'builder.accelerator',
        'hypervisors.0.sshKey',
        'hypervisors.0.uri',
        'mirrors.debian.main',
        'vm.cpus',
        'vm.diskSize',
      ].sort(),
    );
    expect(byPath['mirrors.debian.main']?.line).toBe(4);
    expect(byPath['builder.accelerator']?.line).toBe(6);
    expect(byPath['vm.diskSize']?.message).toMatch(/size like 4096M or 8G/);
    expect(byPath['hypervisors.0.uri']?.line).toBe(12);
    expect(byPath['']?.message).toMatch(/unknown key\(s\) colour/);
    expect(byPath['']?.line).toBe(13);
    expect(issues.every((i) => i.file === 'osbake.yaml')).toBe(true);
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf(() => parseYamlConfig('osbake.yaml', 'vm:\n  cpus: [1,\n', ProjectConfigSchema));
    expect(issues[0]?.message).toMatch(/YAML syntax/);
    expect(issues[0]?.line).toBeGreaterThan(0);
  });

  it('formats the error as one line per problem', () => {
    let err: unknown;
    try {
      parseYamlConfig('osbake.yaml', 'vm:\n  cpus: x\n  memory: 1\n', ProjectConfigSchema);
    } catch (e) {
      err = e;
    }
    // Asserted after the try: a parse that (wrongly) succeeds fails the test.
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('2 configuration problems');
    expect((err as ConfigError).message).toContain('osbake.yaml:2: vm.cpus:');
    expect((err as ConfigError).message).toContain('osbake.yaml:3: vm.memory:');
  });
});

describe('image.yaml', () => {
  it('accepts the minimal definition', () => {
    const cfg = ImageConfigSchema.parse({ name: 'x', distro: 'debian' });
    expect(cfg.suite).toBe('bookworm');
    expect(cfg.packer.template).toBe('.');
    expect(cfg.vanilla.packages).toEqual([]);
    expect(cfg.installer.compressionLevel).toBe(19);
  });

  it.each([
    [{ name: 'Bad Name', distro: 'debian' }, 'name'],
    [{ name: 'x', distro: 'debian', vanilla: { packages: [''] } }, 'vanilla.packages.0'],
    [{ name: 'x', distro: 'debian', installer: { compressionLevel: 0 } }, 'installer.compressionLevel'],
    [{ name: 'x', distro: 'debian', installer: { compressionLevel: 20 } }, 'installer.compressionLevel'],
    [{ name: 'x', distro: 'debian', installer: { compressionLevel: 9.5 } }, 'installer.compressionLevel'],
    [{ name: 'x', distro: 'debian', installer: { compressionLevel: '9' } }, 'installer.compressionLevel'],
    [{ name: 'x', distro: 'debian', vm: { diskSize: '8T' } }, 'vm.diskSize'],
  ])('rejects %j at %s', (input, path) => {
    const r = ImageConfigSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('loads a project and an image, and names the known images when one is missing', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), 'store: s\n');
    await mkdir(join(root, 'images/a'), { recursive: true });
    await writeFile(join(root, 'images/a/image.yaml'), 'name: a\ndistro: debian\n');
    await mkdir(join(root, 'sub/dir'), { recursive: true });
    const project = await loadProject(join(root, 'sub/dir'));
    expect(project.root).toBe(root);
    expect(project.storeDir).toBe(join(root, 's'));
    const img = await loadImage(project, 'a');
    expect(img.manifestFile).toBe(join(root, 'images/a/manifest.json'));
    await expect(loadImage(project, 'b')).rejects.toThrow(UserError);
    await expect(loadImage(project, 'b')).rejects.toMatchObject({
      hint: expect.stringContaining('known images: a'),
    });
  });

  it.each([
    ['../../etc', 'is outside the image directory'],
    ['/tmp', 'is outside the image directory'],
    ['templates', 'does not exist'],
  ])('refuses packer.template %j (%s) with the file and key', async (template, msg) => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), '');
    await mkdir(join(root, 'images/a'), { recursive: true });
    await writeFile(
      join(root, 'images/a/image.yaml'),
      `name: a\ndistro: debian\npacker:\n  template: ${template}\n`,
    );
    const project = await loadProject(root);
    await expect(loadImage(project, 'a')).rejects.toThrow(
      new RegExp(`images/a/image.yaml: packer.template: "${template.replace(/[.]/g, '\\.')}" ${msg}`),
    );
  });

  it('refuses an empty suite', () => {
    const r = ImageConfigSchema.safeParse({ name: 'a', distro: 'debian', suite: '' });
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['suite', 'must not be empty'],
    ]);
  });

  it('refuses an image whose name differs from its directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), '');
    await mkdir(join(root, 'images/a'), { recursive: true });
    await writeFile(join(root, 'images/a/image.yaml'), 'name: b\ndistro: debian\n');
    const project = await loadProject(root);
    await expect(loadImage(project, 'a')).rejects.toThrow(/does not match its directory/);
  });
});

describe('hypervisors and Rocky images', () => {
  const hv = {
    name: 'kvm1',
    uri: 'qemu+ssh://root@kvm1.example.org/system',
    sshKey: '~/.ssh/osbake',
    vanillaVolume: 'rocky8-vanilla.qcow2',
  };

  it('fills hypervisor defaults', () => {
    const cfg = ProjectConfigSchema.parse({ hypervisors: [hv] });
    expect(cfg.hypervisors[0]).toEqual({
      ...hv,
      knownHosts: '~/.ssh/known_hosts',
      pool: 'default',
      network: 'default',
      engine: 'virsh',
      slots: 1,
      accelerator: 'auto',
    });
  });

  it('engine packer needs the pre-made vanilla volume; engine virsh brings its own', () => {
    const { vanillaVolume: _, ...bare } = hv;
    expect(ProjectConfigSchema.safeParse({ hypervisors: [bare] }).success).toBe(true);
    const r = ProjectConfigSchema.safeParse({ hypervisors: [{ ...bare, engine: 'packer' }] });
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      [
        'hypervisors.0.vanillaVolume',
        'engine packer needs vanillaVolume (the pre-made vanilla volume in the pool)',
      ],
    ]);
    const bad = ProjectConfigSchema.safeParse({ hypervisors: [{ ...bare, slots: 0, engine: 'plugin' }] });
    expect(bad.error?.issues.map((i) => i.path.join('.')).sort()).toEqual([
      'hypervisors.0.engine',
      'hypervisors.0.slots',
    ]);
  });

  it('reports every bad hypervisor key with its path and line', () => {
    const text = [
      'hypervisors:',
      '  - name: kvm1',
      '    uri: qemu+ssh://root@KVM1/system?keyfile=x',
      '    sshKey: /k',
      '    vanillaVolume: v',
      '  - name: kvm1',
      '    uri: qemu+ssh://root@kvm2/system',
      '    bastion: "a b"',
      '',
    ].join('\n');
    const issues = issuesOf(() => parseYamlConfig('osbake.yaml', text, ProjectConfigSchema));
    expect(issues.map((i) => `${i.line}:${i.path}`).sort()).toEqual(
      ['3:hypervisors.0.uri', '6:hypervisors.1.sshKey', '8:hypervisors.1.bastion'].sort(),
    );
  });

  it('reports duplicate hypervisor names', () => {
    const r = ProjectConfigSchema.safeParse({ hypervisors: [hv, hv] });
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['hypervisors.1.name', 'duplicate name "kvm1"'],
    ]);
  });

  it('accepts rocky with a point release and needs', () => {
    const cfg = ImageConfigSchema.parse({ name: 'r', distro: 'rocky', suite: '8.10', needs: ['b'] });
    expect(cfg.needs).toEqual(['b']);
  });

  it.each([
    [{ name: 'r', distro: 'Rocky Linux' }, 'distro', 'must be a distribution module name'],
    [{ name: 'r', distro: 'debian', needs: ['r'] }, 'needs', 'cannot need itself'],
    [{ name: 'r', distro: 'debian', needs: ['Bad'] }, 'needs.0', 'lower-case'],
  ])('rejects %j at %s', (input, path, msg) => {
    const r = ImageConfigSchema.safeParse(input);
    const issue = r.error?.issues.find((i) => i.path.join('.') === path);
    expect(issue?.message).toContain(msg);
  });
});

describe('checkProjectDirs', () => {
  it.each([
    ['workDir', '/proc/nope', /workDir \/proc\/nope is not a writable directory \(ENOENT\)/],
    ['outDir', '/dev/null/x', /outDir \/dev\/null\/x is not a writable directory \(ENOTDIR\)/],
  ])('refuses %s: %s before any work', async (key, value, re) => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), `${key}: ${value}\n`);
    const project = await loadProject(root);
    await expect(checkProjectDirs(project)).rejects.toThrow(re);
    await expect(checkProjectDirs(project)).rejects.toMatchObject({ code: 'E_NOT_WRITABLE' });
  });

  it('probes missing directories by making them, and leaves nothing behind', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), 'workDir: w/x\n');
    await mkdir(join(root, 'store'));
    const project = await loadProject(root);
    await checkProjectDirs(project);
    expect((await readdir(root)).sort()).toEqual(['osbake.yaml', 'store']);
    expect(await readdir(join(root, 'store'))).toEqual([]);
  });

  it('builds checking the same fresh project at once all pass (build --all)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'osbake-cfg-'));
    await writeFile(join(root, 'osbake.yaml'), '');
    const project = await loadProject(root);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 4 }, () => checkProjectDirs(project)));
    }
    // A directory another check was probing in stays (it is the project's anyway); no probe file does.
    for (const d of (await readdir(root)).filter((n) => n !== 'osbake.yaml')) {
      expect(await readdir(join(root, d))).toEqual([]);
    }
  });
});
