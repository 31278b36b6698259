/**
 * The Packer builders: `qemu` (a local VM from the vanilla disk, KVM or TCG) and `libvirt` (a VM on
 * a configured hypervisor, artifact downloaded with virsh vol-download). Both run the image's own
 * Packer template; they differ in preflight, variables and where the artifact is.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { readPackerManifest } from '../../config/builds.js';
import { durationToMs, type Hypervisor } from '../../config/project.js';
import { ProcessError } from '../../errors.js';
import { run } from '../../exec/run.js';
import { consoleTailLines } from '../../log/console-text.js';
import type { Logger } from '../../log/logger.js';
import type { Builder, BuilderOutput, BuilderStep, BuildJob, PatchAccess } from '../builder.js';
import { checkLibvirtHost } from '../libvirt/preflight.js';
import { downloadVolumeTo } from '../libvirt/virsh.js';
import {
  buildPackerArgs,
  checkTemplateSyntax,
  findPacker,
  type PackerVersion,
  runPackerBuild,
  sshCommandFromStep,
  stageTemplate,
} from './packer.js';
import { libvirtBuildVars, libvirtVolumeName, mergeUserVars, qemuBuildVars } from './vars.js';

export const QEMU_TOOLS = [
  'packer',
  'qemu-system-x86_64',
  'qemu-img',
  'ansible-playbook',
  'ssh-keygen',
  'ssh',
  'git',
];
/** What a libvirt build runs on this machine (QEMU and the disk tools run on the hypervisor). */
export const LIBVIRT_TOOLS = ['packer', 'ansible-playbook', 'ssh-keygen', 'ssh', 'git', 'virsh'];

/** Is this Packer failure a VM that never became reachable over SSH (worth one retry)? */
export function isSshTimeout(messages: string[]): boolean {
  return messages.some((m) => /timeout waiting for ssh|waiting for ssh.*timeout/i.test(m));
}

export async function tailOfFile(file: string, lines: number): Promise<string[]> {
  return consoleTailLines(await readFile(file, 'utf8').catch(() => ''), lines);
}

/** Kill any QEMU still running from this build's work directory (Packer normally stops it). */
export async function killStrayQemu(workDir: string, log: Logger): Promise<number> {
  let killed = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv0 = cmdline.split('\0')[0] ?? '';
    if (/(^|\/)qemu-system-[^/]*$/.test(argv0) && cmdline.includes(workDir)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
        log.warn({ pid }, 'killed stray QEMU');
      } catch {
        // already gone
      }
    }
  }
  return killed;
}

interface PackerState {
  packerVersion?: PackerVersion;
  keyFile?: string;
  sshCommand?: string;
  out?: BuilderOutput;
}

/** One Packer build: qemu here, or libvirt on a hypervisor (the plugin), and its state. */
interface PackerBuild {
  kind: 'qemu' | 'libvirt';
  hypervisor: Hypervisor | undefined;
  st: PackerState;
}

function createPackerBuilder(kind: 'qemu' | 'libvirt', hypervisor: Hypervisor | undefined): Builder {
  const b: PackerBuild = { kind, hypervisor, st: {} };
  const patchAccess: PatchAccess =
    kind === 'libvirt'
      ? { kind: 'directory' }
      : // QEMU's user network shows the host as 10.0.2.2.
        { kind: 'http', url: (port) => `http://10.0.2.2:${port}/` };
  return {
    type: kind,
    tools: kind === 'libvirt' ? LIBVIRT_TOOLS : QEMU_TOOLS,
    vanilla: kind === 'qemu' ? 'distro' : 'never',
    patchAccess,
    artifactExt: 'qcow2',
    bootTest: true,
    preflight: (job) => preflight(b, job),
    steps(job) {
      const url = () => job.patchRepoUrl ?? '';
      return kind === 'libvirt' ? [packerStep(b, job, url)] : [sshKeyStep(b, job), packerStep(b, job, url)];
    },
    output() {
      if (!b.st.out) throw new Error(`the ${kind} builder has no output (its steps did not finish)`);
      return b.st.out;
    },
    describe() {
      return hypervisor
        ? `Packer libvirt on ${hypervisor.name}`
        : `Packer qemu, ${b.st.out?.accelerator.toUpperCase() ?? 'TCG'}`;
    },
  };
}

/** Packer's version, the template's syntax, the hypervisor, the variables — before any work. */
async function preflight(b: PackerBuild, job: BuildJob): Promise<void> {
  const { st, kind, hypervisor } = b;
  st.packerVersion = await findPacker(job.log);
  await checkTemplateSyntax({
    templateDir: job.image.templateDir,
    workDir: job.workDir,
    version: st.packerVersion,
    builder: kind,
    log: job.log,
  });
  if (hypervisor) {
    await checkLibvirtHost(hypervisor, {
      log: job.log,
      signal: job.signal,
      packer: st.packerVersion,
      progress: (t) => job.progress.detail(t),
    });
    job.progress.say(`hypervisor: ${hypervisor.name} (${hypervisor.uri})`);
  }
  // --var / PKR_VAR_ problems are refused here, before any work; what the environment sets is said.
  for (const n of packerVars(b, job, '').notes) job.progress.say(`packer variable ${n}`);
  job.log.info({ packer: st.packerVersion.text }, 'packer');
}

/** osbake's variables with the image's and the user's (--var, --var-file, PKR_VAR_) merged in. */
function packerVars(b: PackerBuild, job: BuildJob, patchRepoUrl: string) {
  return mergeUserVars(
    osbakeVars(b, job, patchRepoUrl),
    new Set(Object.keys(job.image.config.packer.variables)),
    { vars: job.userVars?.vars ?? [], varFiles: job.userVars?.varFiles ?? [] },
    process.env,
  );
}

function osbakeVars({ st, hypervisor }: PackerBuild, job: BuildJob, patchRepoUrl: string) {
  const { project, image } = job;
  const common = {
    distroVars: job.distro.buildVariables(project, image),
    imageVars: image.config.packer.variables,
    packageState: job.distro.packageState,
    workDir: job.workDir,
    artifactFile: job.artifactFile,
    artifact: job.artifact,
    imageName: image.name,
    release: job.release,
    gitCommit: job.gitCommit,
    cpus: image.config.vm.cpus ?? project.config.vm.cpus,
    memory: image.config.vm.memory ?? project.config.vm.memory,
    diskSize: image.config.vm.diskSize ?? project.config.vm.diskSize,
    sshTimeout: project.config.builder.sshTimeout,
    patchRepoUrl,
  };
  if (hypervisor) {
    return libvirtBuildVars({
      ...common,
      hypervisor,
      domainName: `osbake-${job.buildId}`,
      patchRepoDir: job.patchRepoDir ?? '',
    });
  }
  return qemuBuildVars({
    ...common,
    vanillaDisk: job.vanillaDisk,
    keyFile: st.keyFile ?? '',
    accelerator: job.accel?.accelerator ?? 'tcg',
  });
}

function sshKeyStep({ st }: PackerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'ssh-key',
    title: 'generating the build SSH key',
    async run() {
      const key = join(job.workDir, 'build_key');
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `osbake-${job.buildId}`, '-f', key], {
        log: job.log,
        signal: job.signal,
      });
      st.keyFile = key;
    },
  };
}

function packerStep(b: PackerBuild, job: BuildJob, patchRepoUrl: () => string): BuilderStep {
  const { st, kind } = b;
  return {
    name: 'packer',
    title: 'running packer build',
    async run() {
      const templateDir = join(job.workDir, 'template');
      await stageTemplate(job.image.templateDir, templateDir, st.packerVersion as PackerVersion, {
        builder: kind,
        publicKeyFile: st.keyFile ? `${st.keyFile}.pub` : undefined,
      });
      const serial = join(job.workDir, 'serial.log');
      const attempts = 1 + job.project.config.builder.retries;
      for (let attempt = 1; ; attempt++) {
        await truncate(serial, 0).catch(() => undefined);
        try {
          st.out = await packerOnce(b, job, templateDir, patchRepoUrl());
          return;
        } catch (err) {
          if (!(err instanceof ProcessError)) throw err;
          const serialTail = await tailOfFile(serial, 25);
          const timedOut = isSshTimeout(err.outputTail);
          if (timedOut && attempt < attempts && !job.signal.aborted) {
            job.progress.say(`the build VM never answered SSH (attempt ${attempt}/${attempts}); retrying`);
            job.log.warn({ serialTail }, 'ssh timeout, retrying');
            await killStrayQemu(job.workDir, job.log);
            continue;
          }
          const tail = [...err.outputTail.slice(-15)];
          if (timedOut || serialTail.length > 0)
            tail.push(`--- serial console (${serial}) ---`, ...serialTail);
          const e = new ProcessError(err.argv, err.exitCode, tail, err.signal);
          e.message = timedOut ? 'the build VM never became reachable over SSH' : 'packer build failed';
          throw e;
        }
      }
    },
    async cleanup() {
      await killStrayQemu(job.workDir, job.log);
    },
  };
}

/** One `packer build` (progress, the SSH command to enter the VM) and the artifact it made. */
async function packerOnce(
  b: PackerBuild,
  job: BuildJob,
  templateDir: string,
  patchRepoUrl: string,
): Promise<BuilderOutput> {
  const { st, hypervisor } = b;
  const { log } = job;
  const argv = buildPackerArgs({
    templateDir,
    vars: packerVars(b, job, patchRepoUrl).vars,
    varFiles: job.userVars?.varFiles,
    debug: job.debug,
    onError: job.debug ? 'ask' : 'cleanup',
  });
  const res = await runPackerBuild({
    argv,
    cwd: job.workDir,
    log,
    signal: job.signal,
    interactive: job.debug,
    echo: job.debug,
    // --debug waits for the user at every step: no overall limit then.
    timeoutMs: job.debug ? undefined : durationToMs(job.project.config.builder.buildTimeout),
    onEvent: (e) => {
      if (e.kind === 'step') {
        job.progress.detail(e.text);
        const ssh = st.keyFile ? sshCommandFromStep(e.text, st.keyFile) : undefined;
        if (ssh) {
          st.sshCommand = ssh;
          log.info({ ssh }, 'enter the build VM with');
          if (job.debug) job.progress.say(`enter the build VM: ${ssh}`);
        }
      } else if (e.kind === 'task') job.progress.task(e.text);
      else if (e.kind === 'error') log.error({ src: 'packer' }, e.text);
    },
  });
  let artifactPath: string;
  if (hypervisor) {
    // The artifact is a volume on the hypervisor ("files": null in Packer's manifest).
    artifactPath = join(job.workDir, job.artifactFile);
    job.progress.detail(`downloading the artifact volume from ${hypervisor.name}`);
    await downloadVolumeTo(
      { hypervisor, log, signal: job.signal },
      {
        volume: libvirtVolumeName(job.artifactFile),
        dest: artifactPath,
        progress: (t) => job.progress.detail(t),
      },
    );
  } else {
    const files = [...res.artifacts.values()].flat();
    const outDir = join(job.workDir, 'output');
    artifactPath = files.find((f) => f.endsWith(job.artifactFile)) ?? join(outDir, job.artifactFile);
    if (!existsSync(artifactPath))
      throw new Error(`packer reported success but ${artifactPath} does not exist`);
  }
  return {
    artifactPath,
    packagesFile: join(job.workDir, 'packages.tsv'),
    packageStateFile: join(job.workDir, job.distro.packageState.file),
    record: await readPackerManifest(join(job.workDir, 'packer-manifest.json')),
    accelerator: hypervisor ? `libvirt:${hypervisor.name}` : (job.accel?.accelerator ?? 'tcg'),
    extra: { packer_version: st.packerVersion?.text },
  };
}

export function createQemuBuilder(): Builder {
  return createPackerBuilder('qemu', undefined);
}

export function createLibvirtBuilder(hypervisor: Hypervisor): Builder {
  return createPackerBuilder('libvirt', hypervisor);
}
