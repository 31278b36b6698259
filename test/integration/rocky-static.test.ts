/**
 * rocky8-base and the libvirt builder, checked with the real tools this machine has (no Rocky
 * content and no libvirt daemon are reachable here, so nothing boots): Packer 1.6.6 validates the
 * qemu variant with exactly the variables osbake passes; the libvirt variant, which 1.6.6 cannot
 * load, is parsed by HashiCorp's HCL parser (@cdktf/hcl2json) and checked against
 * packer-plugin-libvirt's schema; Ansible syntax and the repos role on a copy; the CLI's errors.
 * The libvirt preflight has its own file (libvirt-preflight.test.ts). Fast: no VM.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPacker, type PackerVersion, stageTemplate } from '../../src/builders/packer/packer.js';
import { type CommonVarsInput, libvirtBuildVars, qemuBuildVars } from '../../src/builders/packer/vars.js';
import { HypervisorSchema, ProjectConfigSchema } from '../../src/config/project.js';
import { rocky } from '../../src/distros/rocky.js';
import { createNullLogger } from '../../src/log/logger.js';
import { checkLibvirtSources } from '../unit/plugin-schema.js';
import { git, makeProject, REPO, runCli, type TempProject } from './helpers.js';

const IMAGE = join(REPO, 'images/rocky8-base');
const log = createNullLogger();

function sh(argv: string[], cwd?: string, env?: Record<string, string>): { code: number; out: string } {
  try {
    const out = execFileSync(argv[0] as string, argv.slice(1), {
      cwd,
      encoding: 'utf8',
      stdio: 'pipe',
      env: { ...process.env, ...env },
    });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

const varArgs = (vars: Record<string, string | number | boolean>) =>
  Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${String(v)}`]);

describe('rocky8-base template (static: Packer 1.6.6, HCL parser, Ansible)', () => {
  let work: string;
  let packer: PackerVersion;
  let key: string;
  let common: CommonVarsInput;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'osbake-rocky-'));
    packer = await findPacker(log);
    key = join(work, 'build_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const project = {
      config: ProjectConfigSchema.parse({ mirrors: { rocky: { baseos: 'http://m/baseos' } } }),
    };
    const image = { config: { suite: '8.10' } };
    common = {
      distroVars: rocky.buildVariables(project as never, image as never),
      imageVars: {},
      packageState: rocky.packageState,
      workDir: work,
      artifactFile: 'rocky8-base-r1-main-abcd1234.qcow2',
      artifact: 'rocky8-base-r1-main-abcd1234',
      imageName: 'rocky8-base',
      release: 'r1',
      gitCommit: 'abcd1234',
      cpus: 2,
      memory: 2048,
      diskSize: '16G',
      sshTimeout: '60m',
      patchRepoUrl: '',
    };
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('packer validate: the qemu variant, staged by osbake, with the exact variables osbake passes', async () => {
    const dir = join(work, 'qemu');
    await stageTemplate(IMAGE, dir, packer, { builder: 'qemu', publicKeyFile: `${key}.pub` });
    expect(existsSync(join(dir, 'http/osbake_authorized_keys'))).toBe(true);
    expect(existsSync(join(dir, 'builders'))).toBe(false);
    // A stand-in ISO: validate checks the checksum's form but does not read the ISO; the default
    // (the release's CHECKSUM file on download.rockylinux.org) cannot be fetched from here.
    const iso = join(work, 'fake.iso');
    await writeFile(iso, '');
    await truncate(iso, 1024 * 1024);
    const sum = execFileSync('sha256sum', [iso], { encoding: 'utf8' }).split(' ')[0];
    const vars = {
      ...qemuBuildVars({ ...common, keyFile: key, accelerator: 'tcg' }),
      iso_url: iso,
      iso_checksum: `sha256:${sum}`,
    };
    const r = sh(['packer', 'validate', ...varArgs(vars), dir]);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
    // An undeclared variable is an error, so this also proves the template declares all of them.
    const bad = sh(['packer', 'validate', ...varArgs({ ...vars, not_declared: 'x' }), dir]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/Undefined -var variable/);
  });

  it('packer validate: every variable of a libvirt build is declared and the shared files evaluate', async () => {
    // Packer 1.6.6 cannot load source "libvirt": validate the shared files with a null source in
    // its place, given exactly the libvirt -var set.
    const dir = join(work, 'libvirt-vars');
    await stageTemplate(IMAGE, dir, packer, { builder: 'qemu' });
    await rm(join(dir, 'osbake-builder-qemu.pkr.hcl'));
    await writeFile(
      join(dir, 'stand-in.pkr.hcl'),
      'source "null" "stand-in" {\n  communicator = "none"\n}\nbuild {\n  sources = ["source.null.stand-in"]\n}\n',
    );
    const hv = HypervisorSchema.parse({
      name: 'kvm1',
      uri: 'qemu+ssh://root@kvm1/system',
      sshKey: key,
      bastion: 'root@gw:2222',
      vanillaVolume: 'rocky8-vanilla.qcow2',
    });
    const vars = libvirtBuildVars({ ...common, hypervisor: hv, domainName: 'osbake-x' });
    const r = sh(['packer', 'validate', ...varArgs(vars), dir]);
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('packer validate -syntax-only accepts the libvirt variant as staged for Packer >= 1.7', async () => {
    const dir = join(work, 'libvirt');
    await stageTemplate(
      IMAGE,
      dir,
      { major: 1, minor: 14, patch: 0, text: '1.14.0' },
      { builder: 'libvirt' },
    );
    expect(await readFile(join(dir, 'osbake-plugins.pkr.hcl'), 'utf8')).toContain('thomasklein94/libvirt');
    // 1.6.6 rejects required_plugins itself; the syntax check covers the rest.
    await rm(join(dir, 'osbake-plugins.pkr.hcl'));
    const r = sh(['packer', 'validate', '-syntax-only', dir]);
    expect(r.out).toMatch(/Syntax-only check passed/);
    expect(r.code).toBe(0);
  });

  it("the libvirt source follows packer-plugin-libvirt's schema (real HCL parser)", async () => {
    const text = await readFile(join(IMAGE, 'builders/libvirt.pkr.hcl'), 'utf8');
    const parsed = (await parse('libvirt.pkr.hcl', text)) as Record<string, unknown>;
    expect(checkLibvirtSources(parsed)).toEqual({ sources: ['rocky8-base'], problems: [] });
    // and the checker does catch a misspelt argument in the real file
    const typo = (await parse(
      't.pkr.hcl',
      text.replace('network_address_source', 'network_adress_source'),
    )) as Record<string, unknown>;
    expect(checkLibvirtSources(typo).problems).toEqual([
      'source.libvirt.rocky8-base.network_adress_source: not an argument of packer-plugin-libvirt here',
    ]);
  });

  it('both builders provision the same way and reference only declared variables', async () => {
    const load = async (f: string) =>
      (await parse(f, await readFile(join(IMAGE, f), 'utf8'))) as {
        // hcl2json groups labelled blocks by label: provisioner.shell, provisioner.ansible
        build: { provisioner: Record<string, unknown[]>; 'post-processor': unknown }[];
        variable?: Record<string, unknown>;
      };
    const q = (await load('builders/qemu.pkr.hcl')).build[0];
    const l = (await load('builders/libvirt.pkr.hcl')).build[0];
    expect(l?.['post-processor']).toEqual(q?.['post-processor']);
    expect(Object.keys(l?.provisioner ?? {}).sort()).toEqual(['ansible', 'shell']);
    expect(Object.keys(q?.provisioner ?? {}).sort()).toEqual(['ansible', 'shell']);
    expect(l?.provisioner.shell).toEqual(q?.provisioner.shell);
    const ansible = (b: typeof l) => {
      const { extra_arguments, ...rest } = (b?.provisioner.ansible?.[0] ?? {}) as Record<string, unknown>;
      return { rest, extra: (extra_arguments as string[]).slice(0, 2) };
    };
    expect(ansible(l)).toEqual(ansible(q));
    const declared = Object.keys((await load('variables.pkr.hcl')).variable ?? {});
    for (const f of ['builders/qemu.pkr.hcl', 'builders/libvirt.pkr.hcl', 'locals.pkr.hcl']) {
      const used = [...(await readFile(join(IMAGE, f), 'utf8')).matchAll(/var\.([a-z_0-9]+)/g)].map(
        (m) => m[1],
      );
      expect(used.filter((u) => !declared.includes(u as string))).toEqual([]);
    }
  });

  it('the repos role points repo files at the mirrors and restores them (real Ansible, on a copy)', async () => {
    // Rocky 8's repo file layout (Rocky-BaseOS.repo); the role runs against localhost on a copy.
    const repos = join(work, 'yum.repos.d');
    await mkdir(repos, { recursive: true });
    const baseos = [
      '[baseos]',
      'name=Rocky Linux $releasever - BaseOS',
      'mirrorlist=https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever',
      '#baseurl=http://dl.rockylinux.org/$contentdir/$releasever/BaseOS/$basearch/os/',
      'gpgcheck=1',
      'enabled=1',
      '',
    ].join('\n');
    await writeFile(join(repos, 'Rocky-BaseOS.repo'), baseos);
    const play = join(work, 'repos-play.yml');
    const vars = `{repos_dir: ${repos}, repos_backup_dir: ${join(work, 'backup')}, rocky_mirrors: {baseos: "http://mirror.example/rocky/8.10/BaseOS/x86_64/os/", appstream: ""}}`;
    await writeFile(
      play,
      [
        '- hosts: localhost',
        '  connection: local',
        '  gather_facts: false',
        `  vars: ${vars}`,
        '  tasks:',
        '    - ansible.builtin.include_role: { name: repos }',
        `    - ansible.builtin.command: cat ${join(repos, 'Rocky-BaseOS.repo')}`,
        '      register: pointed',
        '    - ansible.builtin.copy: { dest: ' +
          join(work, 'pointed.repo') +
          ', content: "{{ pointed.stdout }}" }',
        '    - ansible.builtin.include_role: { name: repos, tasks_from: restore.yml }',
        '',
      ].join('\n'),
    );
    const r = sh(['ansible-playbook', '-i', 'localhost,', play], work, {
      ANSIBLE_ROLES_PATH: join(IMAGE, 'ansible/roles'),
      ANSIBLE_NOCOLOR: '1',
    });
    expect(r.out).toMatch(/failed=0/);
    expect(r.code).toBe(0);
    const pointed = await readFile(join(work, 'pointed.repo'), 'utf8');
    expect(pointed).toMatch(/^baseurl=http:\/\/mirror.example\/rocky\/8.10\/BaseOS\/x86_64\/os\/$/m);
    expect(pointed).not.toMatch(/^mirrorlist/m);
    expect(pointed).toMatch(/^enabled=1$/m);
    expect(pointed).toMatch(/^gpgcheck=1$/m);
    expect(await readFile(join(repos, 'Rocky-BaseOS.repo'), 'utf8')).toBe(baseos);
    expect(existsSync(join(work, 'backup'))).toBe(false);
  });

  it('ansible-playbook --syntax-check accepts the playbook and roles', () => {
    const r = sh(['ansible-playbook', '--syntax-check', '-i', 'localhost,', 'ansible/playbook.yml'], IMAGE);
    expect(r.out).toMatch(/playbook: ansible\/playbook.yml/);
    expect(r.code).toBe(0);
  });
});

describe('the CLI with rocky8-base and hypervisors (no VM)', () => {
  let project: TempProject;
  beforeAll(async () => {
    project = await makeProject();
    const cfgFile = join(project.dir, 'osbake.yaml');
    const cfg = (await readFile(cfgFile, 'utf8')).replace(
      /^hypervisors: \[\]$/m,
      [
        'hypervisors:',
        '  - name: kvm1',
        '    uri: qemu+ssh://root@127.0.0.1:1/system',
        '    sshKey: /nonexistent/key',
        // The Packer-plugin route (the default engine, virsh, is built for real in libvirt-build.test.ts).
        '    engine: packer',
        '    vanillaVolume: rocky8-vanilla.qcow2',
      ].join('\n'),
    );
    expect(cfg).toContain('name: kvm1');
    await writeFile(cfgFile, cfg);
    await cp(IMAGE, join(project.dir, 'images/rocky8-base'), { recursive: true });
    git(project.dir, 'add', '-A');
    git(project.dir, 'commit', '-q', '-m', 'rocky8-base');
  });
  afterAll(async () => {
    await project.cleanup();
  });

  it('lists rocky8-base', async () => {
    const r = await runCli(['images'], project.dir);
    expect(r.stdout).toMatch(/rocky8-base\s+rocky 8\.10\s+–\s+–\s+Rocky Linux 8 base image/);
  });

  it('--builder libvirt with this Packer: exit 1, one line and the fix, before anything starts', async () => {
    const r = await runCli(['build', 'rocky8-base', '--release', 'r1', '--builder', 'libvirt'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /osbake: error: (checking [^:]*: )?Packer \d+\.\d+\.\d+ cannot load plugins; the libvirt builder needs/,
    );
    expect(r.stderr).toMatch(/hint: install Packer >= 1\.7/);
    expect(existsSync(join(project.dir, 'store'))).toBe(false);
  });

  it.each([
    [['build', 'rocky8-base', '--release', 'r', '--hypervisor', 'nope'], /no hypervisor named "nope"/, 1],
    [
      ['build', 'rocky8-base', '--release', 'r', '--builder', 'xen'],
      /--builder xen is not one of auto, qemu, libvirt, chroot/,
      1,
    ],
    [['build', 'rocky8-base', '--create-patches'], /needs the repositories the updates come from/, 1],
    [
      ['build', 'rocky8-base', '--release', 'r', '--builder', 'chroot', '--skip-commit'],
      /a vanilla disk of rocky8-base \(dnf --installroot\) needs mirrors\.rocky\.baseos and \.appstream/,
      1,
    ],
    [
      ['build', 'debian12-base', '--release', 'r', '--hypervisor', 'kvm1'],
      /images\/debian12-base has no libvirt variant \(builders\/libvirt.pkr.hcl\)/,
      1,
    ],
    [['build', '--all'], /osbake build --all needs --release/, 1],
    [['build', 'rocky8-base', '--all', '--release', 'r'], /--all builds every image; do not name one/, 1],
    [['build', '--release', 'r'], /needs an image name or --all/, 1],
  ])('%j refused', async (args, re, code) => {
    const r = await runCli(args, project.dir);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).toMatch(/\nhint: /);
    expect(r.code).toBe(code);
  });

  it('--all with a dependency cycle: a configuration error (exit 2) naming the loop', async () => {
    const yaml = join(project.dir, 'images/debian12-base/image.yaml');
    const orig = await readFile(yaml, 'utf8');
    const rockyYaml = join(project.dir, 'images/rocky8-base/image.yaml');
    const rockyOrig = await readFile(rockyYaml, 'utf8');
    await writeFile(yaml, `${orig}needs: [rocky8-base]\n`);
    await writeFile(rockyYaml, `${rockyOrig}needs: [debian12-base]\n`);
    try {
      const r = await runCli(['build', '--all', '--release', 'r', '--skip-commit'], project.dir);
      expect(r.stderr).toMatch(/needs: dependency cycle: debian12-base → rocky8-base → debian12-base/);
      expect(r.code).toBe(2);
    } finally {
      await writeFile(yaml, orig);
      await writeFile(rockyYaml, rockyOrig);
    }
  });
});
