/** The concrete steps of `osbake build`. Each step's cleanup runs on success, failure and Ctrl-C. */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileSize, sha256File, sha256Line } from '../artifacts/checksum.js';
import { buildSbom, writeSbom } from '../artifacts/sbom.js';
import { placeFileAtomic, writeTextAtomic } from '../artifacts/store.js';
import { type AcceleratorChoice, selectAccelerator } from '../builders/accel.js';
import { checkLibvirtHost } from '../builders/libvirt/preflight.js';
import { downloadVolume } from '../builders/libvirt/volume.js';
import {
  buildPackerArgs,
  findPacker,
  type PackerVersion,
  runPackerBuild,
  sshCommandFromStep,
  stageTemplate,
} from '../builders/packer/packer.js';
import {
  type BuilderType,
  libvirtBuildVars,
  libvirtVolumeName,
  qemuBuildVars,
} from '../builders/packer/vars.js';
import { appendBuild } from '../config/builds.js';
import type { ImageDefinition } from '../config/image.js';
import { durationToMs, type Hypervisor, type Project } from '../config/project.js';
import type { Distro } from '../distros/distro.js';
import { ProcessError, UserError } from '../errors.js';
import { missingToolError, run } from '../exec/run.js';
import { commitManifest, type Provenance } from '../git/provenance.js';
import type { Logger } from '../log/logger.js';
import type { Progress } from '../log/progress.js';
import type { CreatedBundle } from '../patches/bundle.js';
import type { RepoServer } from '../patches/repo-server.js';
import {
  type BuildPlan,
  type BuildRequest,
  buildManifestEntry,
  type PackageRecord,
  type PackerManifestBuild,
  readPackageList,
  readPackerManifest,
} from './build.js';
import { applyPatches, createPatches } from './patch-steps.js';
import type { Step } from './step.js';
import { ensureVanillaDisk, type VanillaResult } from './vanilla.js';

export interface BuildContext {
  project: Project;
  image: ImageDefinition;
  distro: Distro;
  req: BuildRequest;
  plan: BuildPlan;
  prov: Provenance;
  log: Logger;
  progress: Progress;
  signal: AbortSignal;
  startedAt: number;
  /** qemu (local VM) or libvirt (on `hypervisor`); see pipeline/builder-choice.ts. */
  builder: BuilderType;
  hypervisor?: Hypervisor;
  accel?: AcceleratorChoice;
  packerVersion?: PackerVersion;
  vanilla?: VanillaResult;
  keyFile?: string;
  artifactPath?: string;
  packerManifestFile?: string;
  packagesFile?: string;
  sha256?: string;
  size?: number;
  packages?: PackageRecord[];
  published: string[];
  /** --release R with a patch bundle: the server the VM fetches it from. */
  patchServer?: RepoServer;
  patchRepoUrl?: string;
  /** libvirt builds: the unpacked bundle repository Ansible copies into the VM. */
  patchRepoDir?: string;
  appliedBundle?: { id: string; sha256: string; packages: number };
  /** --create-patches: the bundle made after the build. */
  createdBundle?: CreatedBundle;
  recorded: boolean;
  committed: boolean;
  sshCommand?: string;
  /** Builds without Packer (kind: installer): the manifest.json build record to write. */
  recordAs?: PackerManifestBuild;
  /** Extra manifest.json custom_data of builds without Packer. */
  recordExtra?: Record<string, unknown>;
  /** Files published beside the artifact (src → name in builds/), before the artifact itself. */
  extraArtifacts?: { src: string; name: string }[];
}

export const REQUIRED_TOOLS = [
  'packer',
  'qemu-system-x86_64',
  'qemu-img',
  'ansible-playbook',
  'ssh-keygen',
  'ssh',
  'git',
  'mmdebstrap',
  'extlinux',
  'sfdisk',
  'losetup',
  'partx',
  'mkfs.ext4',
  'blkid',
  'mount',
];

/** What a libvirt build runs on this machine (QEMU and the disk tools run on the hypervisor). */
export const LIBVIRT_REQUIRED_TOOLS = ['packer', 'ansible-playbook', 'ssh-keygen', 'ssh', 'git', 'virsh'];
/** Tools the installer builder runs (no Packer, no VM). */
export const INSTALLER_TOOLS_REQUIRED = [
  'git',
  'mmdebstrap',
  'qemu-img',
  'bmaptool',
  'zstd',
  'cpio',
  'extlinux',
  'grub-mkstandalone',
  'mkfs.vfat',
  'mcopy',
  'mmd',
  'sfdisk',
  'losetup',
  'mkfs.ext4',
  'mount',
];

/** Tools that are not on PATH (pure: takes PATH and an existence check). */
export function missingTools(tools: string[], path: string, exists: (p: string) => boolean): string[] {
  const dirs = path.split(delimiter).filter(Boolean);
  return tools.filter((t) => !dirs.some((d) => exists(join(d, t))));
}

/** Is this Packer failure a VM that never became reachable over SSH (worth one retry)? */
export function isSshTimeout(messages: string[]): boolean {
  return messages.some((m) => /timeout waiting for ssh|waiting for ssh.*timeout/i.test(m));
}

/** ANSI colour and cursor sequences, which systemd writes to the serial console. */
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

async function tailOfFile(file: string, lines: number): Promise<string[]> {
  try {
    const text = (await readFile(file, 'utf8')).replace(ANSI_ESCAPE, '');
    return text
      .split(/\r?\n/)
      .filter((l) => l.trim())
      .slice(-lines);
  } catch {
    return [];
  }
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

export const preflight: Step<BuildContext> = {
  name: 'preflight',
  title: 'checking tools and accelerator',
  async run(ctx) {
    const installer = ctx.image.config.kind === 'installer';
    const tools = installer
      ? INSTALLER_TOOLS_REQUIRED
      : ctx.hypervisor
        ? LIBVIRT_REQUIRED_TOOLS
        : REQUIRED_TOOLS;
    const missing = missingTools(tools, process.env.PATH ?? '', existsSync);
    if (missing.length > 0) {
      const first = missingToolError(missing[0] as string);
      const all = missing.map((t) =>
        missingToolError(t).hint?.replace('install it with: apt-get install ', ''),
      );
      throw new UserError(
        'E_TOOL_MISSING',
        `${missing.join(', ')} not found`,
        missing.length === 1
          ? first.hint
          : `install them with: apt-get install ${[...new Set(all)].join(' ')}`,
      );
    }
    if (installer) {
      ctx.log.info({ kind: 'installer' }, 'preflight');
      await mkdir(ctx.plan.workDir, { recursive: true });
      return;
    }
    ctx.packerVersion = await findPacker(ctx.log);
    if (ctx.hypervisor) {
      await checkLibvirtHost(ctx.hypervisor, {
        log: ctx.log,
        signal: ctx.signal,
        packer: ctx.packerVersion,
        progress: (t) => ctx.progress.detail(t),
      });
      ctx.progress.say(`hypervisor: ${ctx.hypervisor.name} (${ctx.hypervisor.uri})`);
      await mkdir(ctx.plan.workDir, { recursive: true });
      return;
    }
    ctx.accel = await selectAccelerator(
      ctx.req.accelerator ?? ctx.project.config.builder.accelerator,
      ctx.project.config.builder.kvmProbeTimeoutMs,
      ctx.log,
    );
    ctx.progress.say(`accelerator: ${ctx.accel.accelerator.toUpperCase()} (${ctx.accel.reason})`);
    ctx.log.info({ accel: ctx.accel, packer: ctx.packerVersion.text }, 'preflight');
    await mkdir(ctx.plan.workDir, { recursive: true });
  },
  async cleanup(ctx, outcome) {
    const keep = ctx.req.keepWork || (ctx.req.debug && outcome !== 'success');
    if (keep) {
      ctx.progress.say(`work directory kept: ${ctx.plan.workDir}`);
      return;
    }
    await rm(ctx.plan.workDir, { recursive: true, force: true });
  },
};

const vanilla: Step<BuildContext> = {
  name: 'vanilla',
  title: 'preparing the vanilla disk',
  async run(ctx) {
    if (ctx.distro.vanilla !== 'host' || ctx.builder === 'libvirt') {
      ctx.progress.say(
        ctx.builder === 'libvirt'
          ? `vanilla disk: the hypervisor's volume ${ctx.hypervisor?.pool}/${ctx.hypervisor?.vanillaVolume}`
          : `vanilla disk: none (${ctx.image.name} installs from its ISO with a kickstart)`,
      );
      return;
    }
    ctx.vanilla = await ensureVanillaDisk({
      distro: ctx.distro,
      project: ctx.project,
      image: ctx.image,
      log: ctx.log,
      signal: ctx.signal,
      scratchDir: ctx.plan.workDir,
      progress: (t) => ctx.progress.detail(t),
      debug: ctx.req.debug,
    });
    ctx.progress.say(
      ctx.vanilla.cached
        ? `vanilla disk: reused ${ctx.vanilla.path}`
        : `vanilla disk: built ${ctx.vanilla.path}`,
    );
  },
};

const sshKey: Step<BuildContext> = {
  name: 'ssh-key',
  title: 'generating the build SSH key',
  async run(ctx) {
    const key = join(ctx.plan.workDir, 'build_key');
    await run(
      ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `osbake-${ctx.plan.buildId}`, '-f', key],
      {
        log: ctx.log,
        signal: ctx.signal,
      },
    );
    ctx.keyFile = key;
  },
};

function packerVars(ctx: BuildContext): Record<string, string | number | boolean> {
  const { project, image, plan } = ctx;
  const common = {
    distroVars: ctx.distro.buildVariables(project, image),
    imageVars: image.config.packer.variables,
    packageState: ctx.distro.packageState,
    workDir: plan.workDir,
    artifactFile: plan.artifactFile,
    release: plan.release ?? 'unreleased',
    gitCommit: ctx.prov.commit,
    cpus: image.config.vm.cpus ?? project.config.vm.cpus,
    memory: image.config.vm.memory ?? project.config.vm.memory,
    diskSize: image.config.vm.diskSize ?? project.config.vm.diskSize,
    sshTimeout: project.config.builder.sshTimeout,
    patchRepoUrl: ctx.patchRepoUrl ?? '',
  };
  if (ctx.hypervisor) {
    return libvirtBuildVars({
      ...common,
      hypervisor: ctx.hypervisor,
      domainName: `osbake-${plan.buildId}`,
      patchRepoDir: ctx.patchRepoDir ?? '',
    });
  }
  return qemuBuildVars({
    ...common,
    vanillaDisk: ctx.vanilla?.path,
    keyFile: ctx.keyFile ?? '',
    accelerator: ctx.accel?.accelerator ?? 'tcg',
  });
}

const packer: Step<BuildContext> = {
  name: 'packer',
  title: 'running packer build',
  async run(ctx) {
    const { plan, log } = ctx;
    const templateDir = join(plan.workDir, 'template');
    await stageTemplate(ctx.image.templateDir, templateDir, ctx.packerVersion as PackerVersion, {
      builder: ctx.builder,
      publicKeyFile: ctx.keyFile ? `${ctx.keyFile}.pub` : undefined,
    });
    const out = join(plan.workDir, 'output');
    const serial = join(plan.workDir, 'serial.log');
    const attempts = 1 + ctx.project.config.builder.retries;
    for (let attempt = 1; ; attempt++) {
      await truncate(serial, 0).catch(() => undefined);
      const argv = buildPackerArgs({
        templateDir,
        vars: packerVars(ctx),
        debug: ctx.req.debug,
        onError: ctx.req.debug ? 'ask' : 'cleanup',
      });
      try {
        const res = await runPackerBuild({
          argv,
          cwd: plan.workDir,
          log,
          signal: ctx.signal,
          interactive: ctx.req.debug,
          echo: ctx.req.debug,
          // --debug waits for the user at every step: no overall limit then.
          timeoutMs: ctx.req.debug ? undefined : durationToMs(ctx.project.config.builder.buildTimeout),
          onEvent: (e) => {
            if (e.kind === 'step') {
              ctx.progress.detail(e.text);
              const ssh = ctx.keyFile ? sshCommandFromStep(e.text, ctx.keyFile) : undefined;
              if (ssh) {
                ctx.sshCommand = ssh;
                log.info({ ssh: ctx.sshCommand }, 'enter the build VM with');
                if (ctx.req.debug) ctx.progress.say(`enter the build VM: ${ctx.sshCommand}`);
              }
            } else if (e.kind === 'task') ctx.progress.task(e.text);
            else if (e.kind === 'error') log.error({ src: 'packer' }, e.text);
          },
        });
        if (ctx.hypervisor) {
          // The artifact is a volume on the hypervisor ("files": null in Packer's manifest).
          ctx.artifactPath = join(plan.workDir, plan.artifactFile);
          ctx.progress.detail(`downloading the artifact volume from ${ctx.hypervisor.name}`);
          await downloadVolume({
            hypervisor: ctx.hypervisor,
            volume: libvirtVolumeName(plan.artifactFile),
            dest: ctx.artifactPath,
            log,
            signal: ctx.signal,
          });
          ctx.packerManifestFile = join(plan.workDir, 'packer-manifest.json');
          ctx.packagesFile = join(plan.workDir, 'packages.tsv');
          return;
        }
        const files = [...res.artifacts.values()].flat();
        const qcow = files.find((f) => f.endsWith(plan.artifactFile)) ?? join(out, plan.artifactFile);
        if (!existsSync(qcow)) throw new Error(`packer reported success but ${qcow} does not exist`);
        ctx.artifactPath = qcow;
        ctx.packerManifestFile = join(plan.workDir, 'packer-manifest.json');
        ctx.packagesFile = join(plan.workDir, 'packages.tsv');
        return;
      } catch (err) {
        if (!(err instanceof ProcessError)) throw err;
        const serialTail = await tailOfFile(serial, 25);
        const timedOut = isSshTimeout(err.outputTail);
        if (timedOut && attempt < attempts && !ctx.signal.aborted) {
          ctx.progress.say(`the build VM never answered SSH (attempt ${attempt}/${attempts}); retrying`);
          log.warn({ serialTail }, 'ssh timeout, retrying');
          await killStrayQemu(plan.workDir, log);
          continue;
        }
        const tail = [...err.outputTail.slice(-15)];
        if (timedOut || serialTail.length > 0) tail.push(`--- serial console (${serial}) ---`, ...serialTail);
        const e = new ProcessError(err.argv, err.exitCode, tail, err.signal);
        e.message = timedOut ? 'the build VM never became reachable over SSH' : 'packer build failed';
        throw e;
      }
    }
  },
  async cleanup(ctx) {
    await killStrayQemu(ctx.plan.workDir, ctx.log);
  },
};

const postProcess: Step<BuildContext> = {
  name: 'post-process',
  title: 'checksumming and reading the package list',
  async run(ctx) {
    const file = ctx.artifactPath as string;
    ctx.size = await fileSize(file);
    ctx.progress.detail(`sha256 of ${(ctx.size / 2 ** 20).toFixed(0)} MiB`);
    ctx.sha256 = await sha256File(file);
    if (!ctx.packagesFile || !existsSync(ctx.packagesFile)) {
      throw new UserError(
        'E_NO_PACKAGE_LIST',
        'the image did not produce a package list',
        'the template must download it to the packages_file variable (see images/debian12-base)',
      );
    }
    ctx.packages = await readPackageList(ctx.packagesFile);
    if (ctx.packages.length === 0) throw new Error(`${ctx.packagesFile} lists no packages`);
  },
};

/** Packer builds also publish the package list, the SBOM and (--create-patches) the bundle. */
async function publishPackerExtras(ctx: BuildContext, dir: string): Promise<void> {
  const pkgs = join(dir, `${ctx.plan.artifact}.packages.tsv`);
  const b = ctx.createdBundle;
  if (b) {
    const bundleDest = join(ctx.project.storeDir, b.path);
    if (existsSync(bundleDest)) {
      throw new UserError(
        'E_ARTIFACT_EXISTS',
        `${bundleDest} already exists`,
        'commit your change (a new commit gives a new name) or remove the old bundle',
      );
    }
    const list = bundleDest.replace(/\.tar\.zst$/, '.txt');
    ctx.published.push(list, `${bundleDest}.sha256`, bundleDest);
    await placeFileAtomic(b.listFile, list);
    await writeTextAtomic(`${bundleDest}.sha256`, sha256Line(b.sha256, `${b.id}.tar.zst`));
    await placeFileAtomic(b.file, bundleDest, true);
  }
  const sbomFile = join(dir, `${ctx.plan.artifact}.cdx.json`);
  ctx.published.push(sbomFile, pkgs);
  await writeSbom(
    sbomFile,
    buildSbom({
      image: ctx.image.name,
      artifact: ctx.plan.artifact,
      sha256: ctx.sha256 as string,
      distro: ctx.distro.sbomDistro(ctx.image).distro,
      distroVersion: ctx.distro.sbomDistro(ctx.image).version,
      packages: ctx.packages ?? [],
    }),
  );
  await placeFileAtomic(ctx.packagesFile as string, pkgs);
}

export const publish: Step<BuildContext> = {
  name: 'publish',
  title: 'placing the artifacts in the store',
  async run(ctx) {
    const dir = ctx.plan.storeBuildsDir;
    const dest = join(dir, ctx.plan.artifactFile);
    if (existsSync(dest)) {
      throw new UserError(
        'E_ARTIFACT_EXISTS',
        `${dest} already exists`,
        'commit your change (a new commit gives a new name) or remove the old artifact',
      );
    }
    const sum = `${dest}.sha256`;
    for (const extra of ctx.extraArtifacts ?? []) {
      const to = join(dir, extra.name);
      ctx.published.push(to);
      await placeFileAtomic(extra.src, to, true);
    }
    if (ctx.image.config.kind === 'image') await publishPackerExtras(ctx, dir);
    ctx.published.push(sum, dest);
    await writeTextAtomic(sum, sha256Line(ctx.sha256 as string, ctx.plan.artifactFile));
    ctx.progress.detail(`moving ${ctx.plan.artifactFile}`);
    // The image goes last: its presence under the final name means the rest is complete.
    await placeFileAtomic(ctx.artifactPath as string, dest, true);
  },
  async cleanup(ctx, outcome) {
    if (outcome === 'success' || ctx.recorded) return;
    for (const f of ctx.published) await rm(f, { force: true });
  },
};

export const record: Step<BuildContext> = {
  name: 'record',
  title: 'recording the build in manifest.json',
  async run(ctx) {
    const packerBuild = ctx.recordAs ?? (await readPackerManifest(ctx.packerManifestFile as string));
    const entry = buildManifestEntry({
      plan: ctx.plan,
      prov: ctx.prov,
      packer: packerBuild,
      sha256: ctx.sha256 as string,
      size: ctx.size as number,
      packageCount: ctx.packages?.length ?? 0,
      durationS: (Date.now() - ctx.startedAt) / 1000,
      accelerator: ctx.hypervisor
        ? `libvirt:${ctx.hypervisor.name}`
        : (ctx.accel?.accelerator ?? (ctx.recordAs ? 'none' : 'tcg')),
      extra: {
        builder: ctx.builder,
        ...ctx.recordExtra,
        vanilla_key: ctx.vanilla?.key,
        packer_version: ctx.packerVersion?.text,
        ...(ctx.createdBundle
          ? {
              patch_bundle: {
                id: ctx.createdBundle.id,
                path: ctx.createdBundle.path,
                sha256: ctx.createdBundle.sha256,
                size: ctx.createdBundle.size,
                packages: ctx.createdBundle.packages,
              },
            }
          : {}),
        ...(ctx.appliedBundle ? { applied_patch_bundle: ctx.appliedBundle } : {}),
      },
    });
    await appendBuild(ctx.plan.manifestFile, entry);
    ctx.recorded = true;
  },
};

export const commit: Step<BuildContext> = {
  name: 'commit',
  title: 'committing manifest.json',
  async run(ctx) {
    if (ctx.req.skipCommit) {
      ctx.progress.say('--skip-commit: manifest.json updated but not committed');
      return;
    }
    await commitManifest(
      ctx.project.root,
      ctx.plan.manifestFile,
      ctx.image.name,
      ctx.prov,
      ctx.plan.artifact,
      ctx.log,
    );
    ctx.committed = true;
  },
};

export const BUILD_STEPS: Step<BuildContext>[] = [
  preflight,
  applyPatches,
  vanilla,
  sshKey,
  packer,
  postProcess,
  createPatches,
  publish,
  record,
  commit,
];

/** The steps a request needs: patch-source with --release or --create-patches, create-patches with the latter. */
export function buildStepsFor(req: Pick<BuildRequest, 'release' | 'createPatches'>): Step<BuildContext>[] {
  return BUILD_STEPS.filter((s) => {
    if (s === applyPatches) return Boolean(req.release) || Boolean(req.createPatches);
    if (s === createPatches) return Boolean(req.createPatches);
    return true;
  });
}
