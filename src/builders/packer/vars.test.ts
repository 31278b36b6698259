import { describe, expect, it } from 'vitest';
import { HypervisorSchema } from '../../config/project.js';
import { buildPackerArgs } from './packer.js';
import {
  ansibleSshExtraArgs,
  type CommonVarsInput,
  libvirtBuildVars,
  mergeUserVars,
  qemuBuildVars,
} from './vars.js';

const common: CommonVarsInput = {
  distroVars: { rocky_version: '8.10', rocky_baseos_mirror: 'http://m/baseos' },
  imageVars: { extra: 'x' },
  packageState: { variable: 'rpm_nevra_file', file: 'rpm-nevra.txt' },
  workDir: '/w',
  artifactFile: 'rocky8-base-r1-main-abcd1234.qcow2',
  artifact: 'rocky8-base-r1-main-abcd1234',
  imageName: 'rocky8-base',
  release: 'r1',
  gitCommit: 'abcd1234ef',
  cpus: 2,
  memory: 2048,
  diskSize: '16G',
  sshTimeout: '60m',
  patchRepoUrl: '',
};

const shared = {
  rocky_version: '8.10',
  rocky_baseos_mirror: 'http://m/baseos',
  extra: 'x',
  cpus: 2,
  memory: 2048,
  disk_size: '16G',
  ssh_timeout: '60m',
  packages_file: '/w/packages.tsv',
  rpm_nevra_file: '/w/rpm-nevra.txt',
  patch_repo_url: '',
  packer_manifest: '/w/packer-manifest.json',
  release: 'r1',
  git_commit: 'abcd1234ef',
  image_name: 'rocky8-base',
  artifact: 'rocky8-base-r1-main-abcd1234',
};

const hv = HypervisorSchema.parse({
  name: 'kvm1',
  uri: 'qemu+ssh://root@kvm1.example.org/system',
  sshKey: '~/.ssh/osbake',
  vanillaVolume: 'rocky8-vanilla.qcow2',
});

describe('Packer variables', () => {
  it('qemu from an ISO (no host vanilla disk): exact set', () => {
    expect(qemuBuildVars({ ...common, keyFile: '/w/build_key', accelerator: 'tcg' })).toEqual({
      ...shared,
      ssh_private_key_file: '/w/build_key',
      ssh_public_key_file: '/w/build_key.pub',
      output_directory: '/w/output',
      vm_name: 'rocky8-base-r1-main-abcd1234.qcow2',
      accelerator: 'tcg',
      serial_log: '/w/serial.log',
    });
  });

  it('qemu from a host vanilla disk adds vanilla_disk and the distro state file', () => {
    const v = qemuBuildVars({
      ...common,
      distroVars: {},
      imageVars: {},
      packageState: { variable: 'dpkg_status_file', file: 'dpkg-status' },
      vanillaDisk: '/c/v.qcow2',
      keyFile: '/w/k',
      accelerator: 'kvm',
    });
    expect(v.vanilla_disk).toBe('/c/v.qcow2');
    expect(v.dpkg_status_file).toBe('/w/dpkg-status');
    expect(v).not.toHaveProperty('rpm_nevra_file');
    expect(v.accelerator).toBe('kvm');
  });

  it('libvirt without a bastion: exact set', () => {
    expect(
      libvirtBuildVars({ ...common, hypervisor: hv, domainName: 'osbake-1234', home: '/home/u' }),
    ).toEqual({
      ...shared,
      libvirt_uri:
        'qemu+ssh://root@kvm1.example.org/system?keyfile=/home/u/.ssh/osbake&known_hosts=/home/u/.ssh/known_hosts',
      libvirt_pool: 'default',
      libvirt_vanilla_volume: 'rocky8-vanilla.qcow2',
      libvirt_network: 'default',
      volume_name: 'rocky8-base-r1-main-abcd1234.qcow2',
      domain_name: 'osbake-1234',
      ssh_private_key_file: '/home/u/.ssh/osbake',
      ssh_bastion_host: '',
      ssh_bastion_port: 22,
      ssh_bastion_username: 'root',
      ssh_bastion_private_key_file: '',
      ansible_ssh_extra_args: '',
      patch_repo_dir: '',
    });
  });

  it("libvirt applying a release's bundle: the unpacked repository is handed to Ansible, no URL", () => {
    const v = libvirtBuildVars({ ...common, hypervisor: hv, domainName: 'd', patchRepoDir: '/w/patch-repo' });
    expect(v.patch_repo_dir).toBe('/w/patch-repo');
    expect(v.patch_repo_url).toBe('');
  });

  it('libvirt through a bastion: communicator bastion and an Ansible ProxyCommand', () => {
    const h = { ...hv, bastion: 'jump@gw.example.org:2222', pool: 'images', network: 'build' };
    const v = libvirtBuildVars({ ...common, hypervisor: h, domainName: 'd', home: '/root' });
    expect(v).toMatchObject({
      libvirt_pool: 'images',
      libvirt_network: 'build',
      ssh_bastion_host: 'gw.example.org',
      ssh_bastion_port: 2222,
      ssh_bastion_username: 'jump',
      ssh_bastion_private_key_file: '/root/.ssh/osbake',
      ansible_ssh_extra_args:
        '-o ProxyCommand="ssh -i /root/.ssh/osbake -p 2222 -o BatchMode=yes -W %h:%p jump@gw.example.org"',
    });
    expect(v).not.toHaveProperty('accelerator');
    expect(v).not.toHaveProperty('vanilla_disk');
  });

  it('no ProxyCommand without a bastion', () => {
    expect(ansibleSshExtraArgs(hv, '/k')).toBe('');
  });
});

describe('user Packer variables (--var, --var-file, PKR_VAR_*)', () => {
  const osbake = {
    vanilla_disk: '/c/v.qcow2',
    output_directory: '/w/out',
    cpus: 2,
    extra: 'from image.yaml',
  };
  const image = new Set(['extra']);
  it('--var overrides image.yaml variables and adds template variables of the user', () => {
    const r = mergeUserVars(osbake, image, { vars: ['extra=cli', 'mine=1', 'mine=2'], varFiles: [] }, {});
    expect(r.vars).toEqual({ ...osbake, extra: 'cli', mine: '2' });
    expect(r.notes).toEqual([]);
  });

  it('PKR_VAR_ of an image variable wins: osbake leaves its -var out and says so', () => {
    const r = mergeUserVars(
      osbake,
      image,
      { vars: [], varFiles: [] },
      { PKR_VAR_extra: 'env', HOME: '/root' },
    );
    expect('extra' in r.vars).toBe(false);
    expect(r.notes).toEqual(['extra from PKR_VAR_extra (over image.yaml packer.variables)']);
  });

  it.each([
    [
      { vars: ['vanilla_disk=/x'], varFiles: [] },
      {},
      /--var vanilla_disk: osbake sets the Packer variable vanilla_disk itself/,
    ],
    [
      { vars: [], varFiles: [] },
      { PKR_VAR_output_directory: '/tmp' },
      /PKR_VAR_output_directory is set, but osbake sets/,
    ],
    [{ vars: ['novalue'], varFiles: [] }, {}, /--var novalue is not NAME=VALUE/],
    [{ vars: ['=x'], varFiles: [] }, {}, /is not NAME=VALUE/],
  ])('refuses %j %j', (user, env, re) => {
    expect(() => mergeUserVars(osbake, image, user, env)).toThrow(re);
  });

  it('passes -var-file before the -var options, which win over it as in Packer', () => {
    expect(buildPackerArgs({ templateDir: '/t', vars: { a: 1 }, varFiles: ['/v/site.pkrvars.hcl'] })).toEqual(
      [
        'packer',
        'build',
        '-machine-readable',
        '-color=false',
        '-force',
        '-on-error=cleanup',
        '-var-file=/v/site.pkrvars.hcl',
        '-var',
        'a=1',
        '/t',
      ],
    );
  });
});

describe('PACKER_MANAGED_VARS (config/image.ts)', () => {
  it('names every variable osbake sets, so image.yaml cannot set one', async () => {
    const { PACKER_MANAGED_VARS } = await import('../../config/image.js');
    const own = (v: Record<string, unknown>) =>
      Object.keys(v).filter((k) => !(k in common.distroVars) && !(k in common.imageVars));
    const q = qemuBuildVars({ ...common, vanillaDisk: '/v.qcow2', keyFile: '/w/k', accelerator: 'tcg' });
    const l = libvirtBuildVars({
      ...common,
      hypervisor: { ...hv, bastion: 'jump@b:22' },
      domainName: 'd',
      patchRepoDir: '/p',
    });
    const missing = [...own(q), ...own(l)].filter((k) => !PACKER_MANAGED_VARS.has(k));
    expect(missing).toEqual([]);
  });
});
