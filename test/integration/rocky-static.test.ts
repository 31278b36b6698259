/**
 * rocky8-base and the libvirt builder, checked with the real tools this machine has (no Rocky
 * content and no libvirt daemon are reachable here, so nothing boots): Packer 1.6.6 validates the
 * qemu variant with exactly the variables osbake passes; the libvirt variant, which 1.6.6 cannot
 * load, is parsed by HashiCorp's HCL parser (@cdktf/hcl2json) and checked against
 * packer-plugin-libvirt's schema; ansible-playbook --syntax-check; the libvirt preflight against a
 * real sshd, real ssh and virsh, and the real Packer; the CLI's errors. Fast: no VM.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLibvirtSources } from '../../src/builders/libvirt/plugin-schema.js';
import { checkLibvirtHost, virshArgs } from '../../src/builders/libvirt/preflight.js';
import { downloadVolume, parseVolInfoBytes } from '../../src/builders/libvirt/volume.js';
import { findPacker, type PackerVersion, stageTemplate } from '../../src/builders/packer/packer.js';
import { type CommonVarsInput, libvirtBuildVars, qemuBuildVars } from '../../src/builders/packer/vars.js';
import { type Hypervisor, HypervisorSchema, ProjectConfigSchema } from '../../src/config/project.js';
import { rocky } from '../../src/distros/rocky.js';
import { UserError } from '../../src/errors.js';
import { createNullLogger } from '../../src/log/logger.js';
import { freePort, git, makeProject, REPO, runCli, type TempProject, waitForSshBanner } from './helpers.js';

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

async function userErrorOf(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

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
        '    - ansible.builtin.command: cat ' + join(repos, 'Rocky-BaseOS.repo'),
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

describe('libvirt preflight against real ssh, sshd, virsh and Packer', () => {
  let work: string;
  let key: string;
  let sshd: ChildProcess | undefined;
  let sshdPort = 0;
  const hv = (over: Partial<Hypervisor>): Hypervisor =>
    HypervisorSchema.parse({
      name: 'kvm1',
      uri: 'qemu+ssh://root@127.0.0.1:1/system',
      sshKey: key,
      knownHosts: join(work, 'known_hosts'),
      vanillaVolume: 'rocky8-vanilla.qcow2',
      ...over,
    });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'osbake-lv-'));
    key = join(work, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'host_key')]);
    await writeFile(join(work, 'authorized_keys'), await readFile(`${key}.pub`));
    sshdPort = await freePort();
    const hostPub = (await readFile(join(work, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(join(work, 'known_hosts'), `[127.0.0.1]:${sshdPort} ${hostPub}\n`);
    await writeFile(
      join(work, 'sshd_config'),
      [
        `Port ${sshdPort}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(work, 'host_key')}`,
        `AuthorizedKeysFile ${join(work, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'StrictModes no',
        'UsePAM no',
        `PidFile ${join(work, 'sshd.pid')}`,
        '',
      ].join('\n'),
    );
    await mkdir('/run/sshd', { recursive: true });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(work, 'sshd_config')], { stdio: 'ignore' });
    expect(await waitForSshBanner(sshdPort, 15_000)).toBe(true);
  });
  afterAll(async () => {
    sshd?.kill('SIGTERM');
    await rm(work, { recursive: true, force: true });
  });

  it('Packer 1.6.6 here: refused with how to get a Packer that loads the plugin', async () => {
    const packer = await findPacker(log);
    const e = await userErrorOf(checkLibvirtHost(hv({}), { log, packer }));
    expect(e.code).toBe('E_PACKER_TOO_OLD');
    expect(e.message).toBe(
      `Packer ${packer.text} cannot load plugins; the libvirt builder needs Packer >= 1.7 with packer-plugin-libvirt`,
    );
    expect(e.hint).toMatch(/packer plugins install github.com\/thomasklein94\/libvirt/);
  });

  it('an unreachable hypervisor: one line naming host, port and the reason', async () => {
    const port = await freePort();
    const h = hv({ uri: `qemu+ssh://root@127.0.0.1:${port}/system` });
    const e = await userErrorOf(checkLibvirtHost(h, { log }));
    expect(e.code).toBe('E_HYPERVISOR_SSH');
    expect(e.message).toMatch(
      new RegExp(`^hypervisor kvm1: cannot log in over SSH to root@127.0.0.1:${port}: .*Connection refused`),
    );
    expect(e.message).not.toContain('\n');
    expect(e.hint).toMatch(/ssh-keyscan 127.0.0.1/);
  });

  it('a key the hypervisor does not accept', async () => {
    const other = join(work, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const h = hv({ uri: `qemu+ssh://root@127.0.0.1:${sshdPort}/system`, sshKey: other });
    const e = await userErrorOf(checkLibvirtHost(h, { log }));
    expect(e.code).toBe('E_HYPERVISOR_SSH');
    expect(e.message).toMatch(/Permission denied/);
  });

  it('SSH works (real sshd) but libvirt does not answer there: the next check names the URI', async () => {
    const steps: string[] = [];
    const h = hv({
      uri: `qemu+ssh://root@127.0.0.1:${sshdPort}/system`,
      bastion: `root@127.0.0.1:${sshdPort}`,
    });
    const e = await userErrorOf(checkLibvirtHost(h, { log, progress: (t) => steps.push(t) }));
    expect(steps.slice(0, 3)).toEqual([
      `ssh root@127.0.0.1:${sshdPort}`,
      `ssh bastion root@127.0.0.1:${sshdPort}`,
      `virsh -c qemu+ssh://root@127.0.0.1:${sshdPort}/system version`,
    ]);
    expect(e.code).toBe('E_LIBVIRT_CONNECT');
    expect(e.message).toMatch(
      new RegExp(
        `^hypervisor kvm1: libvirt does not answer on qemu\\+ssh://root@127.0.0.1:${sshdPort}/system: \\S`,
      ),
    );
    expect(e.message).not.toContain('\n');
  });

  it('no libvirt daemon on a local URI: virsh fails and says so in one line', async () => {
    const e = await userErrorOf(checkLibvirtHost(hv({ uri: 'qemu:///system' }), { log }));
    expect(e.code).toBe('E_LIBVIRT_CONNECT');
    expect(e.message).toMatch(
      /^hypervisor kvm1: libvirt does not answer on qemu:\/\/\/system: .*(socket|No such file)/,
    );
    expect(e.hint).toMatch(/libvirtd \(or virtqemud\)/);
  });
});

/** libvirt's built-in test driver (no daemon): a node with pool "images" holding the vanilla volume. */
const TEST_NODE = `<node>
  <pool type='dir'>
    <name>images</name>
    <uuid>35bb2ad9-388a-cdfe-461a-b8907f6e53fe</uuid>
    <capacity>107374182400</capacity>
    <allocation>0</allocation>
    <available>107374182400</available>
    <target><path>/var/lib/libvirt/images</path></target>
    <volume type='file'>
      <name>rocky8-vanilla.qcow2</name>
      <capacity unit='G'>8</capacity>
      <allocation unit='M'>900</allocation>
      <target><path>/var/lib/libvirt/images/rocky8-vanilla.qcow2</path><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
`;

describe("virsh against libvirt's test driver (pool and volume checks, vol-info parsing)", () => {
  let work: string;
  let h: Hypervisor;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'osbake-lvt-'));
    await writeFile(join(work, 'node.xml'), TEST_NODE);
    // The schema accepts only qemu URIs; the test driver stands in for the hypervisor's libvirtd.
    h = {
      ...HypervisorSchema.parse({
        name: 'testnode',
        uri: 'qemu:///system',
        sshKey: '/unused',
        pool: 'images',
        vanillaVolume: 'rocky8-vanilla.qcow2',
      }),
      uri: `test://${join(work, 'node.xml')}`,
    };
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('passes when libvirt answers and the pool and the vanilla volume exist', async () => {
    const steps: string[] = [];
    await checkLibvirtHost(h, { log, progress: (t) => steps.push(t) });
    expect(steps).toEqual([
      `virsh -c ${h.uri} version`,
      'virsh pool-info images',
      'virsh vol-info --pool images rocky8-vanilla.qcow2',
    ]);
  });

  it("a missing pool: one line with libvirt's reason and how to list the pools", async () => {
    const e = await userErrorOf(checkLibvirtHost({ ...h, pool: 'nosuch' }, { log }));
    expect(e.code).toBe('E_LIBVIRT_POOL');
    expect(e.message).toBe(
      'hypervisor testnode: storage pool "nosuch" is not usable: error: Storage pool not found: no storage pool with matching name \'nosuch\'',
    );
    expect(e.hint).toMatch(/pool-list --all/);
  });

  it('a missing vanilla volume: one line naming volume and pool, and how to upload it', async () => {
    const e = await userErrorOf(checkLibvirtHost({ ...h, vanillaVolume: 'nope.qcow2' }, { log }));
    expect(e.code).toBe('E_LIBVIRT_VOLUME');
    expect(e.message).toMatch(
      /^hypervisor testnode: vanilla volume "nope.qcow2" is not in pool "images": error: Storage volume not found/,
    );
    expect(e.hint).toMatch(/vol-create-as images nope.qcow2 8G --format qcow2, then vol-upload/);
  });

  it('reads the real vol-info --bytes output; the download is issued as virsh vol-download', async () => {
    const out = execFileSync(
      'virsh',
      virshArgs(h, ['vol-info', '--bytes', '--pool', 'images', 'rocky8-vanilla.qcow2']).slice(1),
      {
        encoding: 'utf8',
      },
    );
    expect(parseVolInfoBytes(out)).toEqual({ capacity: 8 * 2 ** 30, allocation: 900 * 2 ** 20 });
    // The test driver has no volume streams, so the download itself fails here, as virsh says.
    const ac = new AbortController();
    await expect(
      downloadVolume({
        hypervisor: h,
        volume: 'rocky8-vanilla.qcow2',
        dest: join(work, 'out.qcow2'),
        log,
        signal: ac.signal,
      }),
    ).rejects.toMatchObject({
      outputTail: expect.arrayContaining([expect.stringMatching(/virStorageVolDownload/)]),
    });
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
    expect(r.stdout).toMatch(/rocky8-base\s+rocky 8\.10\s+Rocky Linux 8 base image/);
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
      /--builder xen is not one of qemu, libvirt/,
      1,
    ],
    [['build', 'rocky8-base', '--create-patches'], /needs rpm patch bundles/, 1],
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
