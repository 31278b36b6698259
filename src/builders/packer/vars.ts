/**
 * The Packer -var set of a build (pure): what every template gets, plus what the builder needs —
 * qemu (local VM: vanilla disk, accelerator, build key through fw_cfg, serial log) or libvirt
 * (hypervisor URI, pool, vanilla volume to clone, network, key and bastion). Templates must
 * declare every variable they are given (Packer rejects undeclared -var names).
 */
import { join } from 'node:path';
import type { Hypervisor } from '../../config/project.js';
import { parseSshAddress } from '../../config/ssh-target.js';
import { UserError } from '../../errors.js';
import type { BuilderType } from '../builder.js';
import { expandHome, pluginLibvirtUri } from '../libvirt/uri.js';

/** A -var value. */
export type PackerVarValue = string | number | boolean;

/** The builders that run a Packer template (of builder.ts's one BuilderType). */
export type PackerBuilderType = Extract<BuilderType, 'qemu' | 'libvirt'>;

export interface CommonVarsInput {
  /** Distro variables (mirrors, suite) then the image's packer.variables, in that order. */
  distroVars: Record<string, PackerVarValue>;
  imageVars: Record<string, PackerVarValue>;
  /** The distro's installed-package state file variable (dpkg_status_file, rpm_nevra_file). */
  packageState: { variable: string; file: string };
  workDir: string;
  artifactFile: string;
  /** The artifact name (image-release-branch-hash), recorded in /etc/osbake-release. */
  artifact: string;
  imageName: string;
  release: string;
  gitCommit: string;
  cpus: number;
  memory: number;
  diskSize: string;
  sshTimeout: string;
  patchRepoUrl: string;
}

export interface QemuVarsInput extends CommonVarsInput {
  /** The host-made vanilla disk (distros whose vanilla disk osbake makes); absent for ISO installs. */
  vanillaDisk?: string;
  keyFile: string;
  accelerator: string;
}

export interface LibvirtVarsInput extends CommonVarsInput {
  hypervisor: Hypervisor;
  /** Name of the build domain on the hypervisor (unique per build). */
  domainName: string;
  /** The unpacked patch bundle repository on this machine, copied into the VM (empty: none). */
  patchRepoDir?: string;
  home?: string;
}

function commonVars(i: CommonVarsInput): Record<string, PackerVarValue> {
  return {
    ...i.distroVars,
    ...i.imageVars,
    cpus: i.cpus,
    memory: i.memory,
    disk_size: i.diskSize,
    ssh_timeout: i.sshTimeout,
    packages_file: join(i.workDir, 'packages.tsv'),
    [i.packageState.variable]: join(i.workDir, i.packageState.file),
    patch_repo_url: i.patchRepoUrl,
    packer_manifest: join(i.workDir, 'packer-manifest.json'),
    release: i.release,
    git_commit: i.gitCommit,
    image_name: i.imageName,
    artifact: i.artifact,
  };
}

/** Variables of a local QEMU build. */
export function qemuBuildVars(i: QemuVarsInput): Record<string, PackerVarValue> {
  return {
    ...commonVars(i),
    ...(i.vanillaDisk ? { vanilla_disk: i.vanillaDisk } : {}),
    ssh_private_key_file: i.keyFile,
    ssh_public_key_file: `${i.keyFile}.pub`,
    output_directory: join(i.workDir, 'output'),
    vm_name: i.artifactFile,
    accelerator: i.accelerator,
    serial_log: join(i.workDir, 'serial.log'),
  };
}

/** The artifact volume's name on the hypervisor: the artifact file name (<artifact>.qcow2). */
export function libvirtVolumeName(artifactFile: string): string {
  return artifactFile;
}

/**
 * ssh options for Ansible (Packer's ansible provisioner with use_proxy = false connects to the VM
 * directly, so the bastion must be given to ssh as a ProxyCommand). Empty without a bastion.
 */
export function ansibleSshExtraArgs(h: Hypervisor, key: string): string {
  if (!h.bastion) return '';
  const b = parseSshAddress(h.bastion);
  const port = b.port ? ` -p ${b.port}` : '';
  const user = b.user ? `${b.user}@` : '';
  return `-o ProxyCommand="ssh -i ${key}${port} -o BatchMode=yes -W %h:%p ${user}${b.host}"`;
}

/** Variables of a build on a libvirt hypervisor (packer-plugin-libvirt). */
export function libvirtBuildVars(i: LibvirtVarsInput): Record<string, PackerVarValue> {
  const h = i.hypervisor;
  const key = expandHome(h.sshKey, i.home);
  const bastion = h.bastion ? parseSshAddress(h.bastion) : undefined;
  return {
    ...commonVars(i),
    libvirt_uri: pluginLibvirtUri(h, i.home),
    libvirt_pool: h.pool,
    libvirt_vanilla_volume: h.vanillaVolume ?? '',
    libvirt_network: h.network,
    volume_name: libvirtVolumeName(i.artifactFile),
    domain_name: i.domainName,
    ssh_private_key_file: key,
    ssh_bastion_host: bastion?.host ?? '',
    ssh_bastion_port: bastion?.port ?? 22,
    ssh_bastion_username: bastion?.user ?? 'root',
    ssh_bastion_private_key_file: bastion ? key : '',
    ansible_ssh_extra_args: ansibleSshExtraArgs(h, key),
    patch_repo_dir: i.patchRepoDir ?? '',
  };
}

export interface UserVars {
  /** --var NAME=VALUE, in order (a later one wins). */
  vars: readonly string[];
  varFiles: readonly string[];
}

/**
 * osbake's -var set plus the user's Packer variables (pure): --var overrides image.yaml's
 * packer.variables; PKR_VAR_<name> in the environment wins over image.yaml (osbake then leaves its
 * -var out instead of silently overriding it); neither may set a variable osbake itself manages
 * (vanilla_disk, output_directory, ...) — that is an error, not a surprise.
 */
export function mergeUserVars(
  osbakeVars: Record<string, PackerVarValue>,
  imageVarNames: ReadonlySet<string>,
  user: UserVars,
  env: Readonly<Record<string, string | undefined>>,
): { vars: Record<string, PackerVarValue>; notes: string[] } {
  const vars = { ...osbakeVars };
  const notes: string[] = [];
  const managed = (k: string) => k in osbakeVars && !imageVarNames.has(k);
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('PKR_VAR_') || value === undefined) continue;
    const name = key.slice('PKR_VAR_'.length);
    if (managed(name)) {
      throw new UserError(
        'E_USAGE',
        `${key} is set, but osbake sets the Packer variable ${name} itself`,
        `unset ${key}; osbake manages ${name} for every build`,
      );
    }
    if (name in vars) {
      delete vars[name];
      notes.push(`${name} from ${key} (over image.yaml packer.variables)`);
    }
  }
  for (const kv of user.vars) {
    const eq = kv.indexOf('=');
    const name = eq > 0 ? kv.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
      throw new UserError('E_USAGE', `--var ${kv} is not NAME=VALUE`, 'e.g. --var cpus=4');
    }
    if (managed(name)) {
      throw new UserError(
        'E_USAGE',
        `--var ${name}: osbake sets the Packer variable ${name} itself`,
        'set image variables (image.yaml packer.variables, or your own template variables) only',
      );
    }
    vars[name] = kv.slice(eq + 1);
  }
  return { vars, notes };
}
