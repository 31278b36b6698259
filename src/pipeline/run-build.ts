/** The `osbake build` verb: validate, plan, run the steps, report. */

import { resolve } from 'node:path';
import { publishAfterBuild } from '../artifacts/publish.js';
import { checkTemplateSupports } from '../builders/packer/packer.js';
import { loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import { distroFor } from '../distros/index.js';
import { rockyPatchRepos } from '../distros/rocky.js';
import { InterruptedError, UserError } from '../errors.js';
import { readProvenance } from '../git/provenance.js';
import { createFileLogger, createNullLogger } from '../log/logger.js';
import { formatElapsed, Progress } from '../log/progress.js';
import { type BuildRequest, planBuild } from './build.js';
import { type BuildContext, buildStepsFor } from './build-steps.js';
import { chooseBuilder } from './builder-choice.js';
import { INSTALLER_STEPS } from './installer-steps.js';
import { runSteps } from './runner.js';

export interface RunBuildOptions {
  projectDir: string;
  image: string;
  release?: string;
  skipCommit: boolean;
  debug: boolean;
  createPatches?: boolean;
  accelerator?: string;
  keepWork?: boolean;
  /** --builder qemu|libvirt (default osbake.yaml builder.type). */
  builder?: string;
  /** --hypervisor NAME (implies libvirt). */
  hypervisor?: string;
  /** Set by build --all: print plain progress lines prefixed with the image (builds run in parallel). */
  quietProgress?: boolean;
  /** Skip the upload to osbake.yaml's publish.to mirror after the build (--no-publish). */
  noPublish?: boolean;
  /** --package FILE (installer images only). */
  packageFile?: string;
}

const ACCELERATORS = ['auto', 'kvm', 'tcg'] as const;

/** Install SIGINT/SIGTERM handlers that abort the build once; returns a function removing them. */
export function trapSignals(ac: AbortController, onSignal: (s: NodeJS.Signals) => void): () => void {
  const handler = (s: NodeJS.Signals) => {
    if (!ac.signal.aborted) {
      onSignal(s);
      ac.abort(new InterruptedError(s));
    } else {
      process.stderr.write('osbake: still cleaning up (VM, loop devices, temporary files); please wait\n');
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    process.off('SIGHUP', handler);
  };
}

export async function runBuild(o: RunBuildOptions): Promise<BuildContext> {
  if (o.accelerator && !(ACCELERATORS as readonly string[]).includes(o.accelerator)) {
    throw new UserError(
      'E_USAGE',
      `--accelerator ${o.accelerator} is not one of auto, kvm, tcg`,
      'use --accelerator tcg or kvm or auto',
    );
  }
  if (!o.release && !o.createPatches) {
    throw new UserError(
      'E_USAGE',
      'osbake build needs --release <release>',
      `e.g. osbake build ${o.image} --release 2026.11 (the release this image belongs to)`,
    );
  }
  const project = await loadProject(o.projectDir);
  const image = await loadImage(project, o.image);
  const choice = chooseBuilder(project, o);
  checkTemplateSupports(image.templateDir, choice.builder);
  if (o.createPatches && image.config.distro === 'rocky' && rockyPatchRepos(project).length === 0) {
    throw new UserError(
      'E_NO_RPM_MIRROR',
      `--create-patches on ${image.name} needs the repositories the updates come from`,
      'set mirrors.rocky.baseos / .appstream (and .epel, .powertools) in osbake.yaml',
    );
  }
  const prov = await readProvenance(project.root, createNullLogger());
  if (prov.dirty && !o.skipCommit) {
    const shown = prov.dirtyPaths.slice(0, 5).join(', ') + (prov.dirtyPaths.length > 5 ? ', ...' : '');
    throw new UserError(
      'E_DIRTY',
      `the git tree has uncommitted changes (${shown})`,
      'commit them, or pass --skip-commit to build a -dirty artifact whose manifest.json is not committed',
    );
  }
  const req: BuildRequest = {
    image: o.image,
    release: o.release,
    skipCommit: o.skipCommit,
    debug: o.debug,
    createPatches: o.createPatches,
    accelerator: o.accelerator as BuildRequest['accelerator'],
    keepWork: o.keepWork,
    builder: choice.builder,
    hypervisor: choice.hypervisor?.name,
    packageFile: o.packageFile ? resolve(o.packageFile) : undefined,
  };
  const installer = image.config.kind === 'installer';
  if (o.packageFile && !installer) {
    throw new UserError(
      'E_USAGE',
      `--package is for installer images; ${o.image} is a disk image (image.yaml kind: ${image.config.kind})`,
      'e.g. osbake build usb-installer --release 2026.11 --package site.tar.gz',
    );
  }
  if (installer && (!o.release || o.createPatches)) {
    throw new UserError(
      'E_USAGE',
      `${o.image} is an installer: it needs --release <R> (the release whose image it carries) and no --create-patches`,
      `e.g. osbake build ${o.image} --release 2026.11`,
    );
  }
  const plan = planBuild(project, image, prov, req);
  const log = createFileLogger(plan.logFile);
  log.info({ plan, prov, req }, 'build start');
  // Parallel builds (build --all over several hosts) print plain lines: one status line cannot show two.
  const progress = o.quietProgress ? new Progress(process.stderr, false) : new Progress();
  progress.say(`osbake: building ${plan.artifact} (log: ${plan.logFile})`);
  const ac = new AbortController();
  const untrap = trapSignals(ac, (s) => {
    log.warn({ signal: s }, 'interrupted');
    progress.say(`osbake: ${s} received: stopping the build and cleaning up`);
  });
  const ctx: BuildContext = {
    project,
    image,
    distro: distroFor(image.config.distro),
    req,
    plan,
    prov,
    log,
    progress,
    signal: ac.signal,
    startedAt: Date.now(),
    builder: choice.builder,
    hypervisor: choice.hypervisor,
    published: [],
    recorded: false,
    committed: false,
  };
  try {
    const result = await runSteps(installer ? INSTALLER_STEPS : buildStepsFor(req), ctx, ac.signal, {
      onStepStart: (i, total, step) => {
        log.info({ step: step.name }, `step ${i + 1}/${total}: ${step.title}`);
        progress.step(i + 1, total, step.title);
      },
      onStepEnd: (step, ms) => log.info({ step: step.name, ms: Math.round(ms) }, 'step done'),
      onCleanupError: (step, err) => {
        log.error({ step: step.name, err: String(err) }, 'cleanup failed');
        progress.say(`osbake: warning: cleanup of ${step.name} failed: ${String(err)}`);
      },
    });
    log.info(
      { outcome: result.outcome, timings: result.timings, failedStep: result.failedStep },
      'build end',
    );
    progress.stop();
    if (result.error) {
      if (result.outcome === 'failure') {
        process.stderr.write(
          `osbake: build failed at step "${result.failedStep}" (full log: ${plan.logFile})\n`,
        );
      }
      throw result.error;
    }
    const timings = result.timings.map((t) => `${t.name} ${(t.ms / 1000).toFixed(1)}s`).join(', ');
    process.stdout.write(
      [
        `built ${plan.artifact} in ${formatElapsed(Date.now() - ctx.startedAt)} (${installer ? 'no VM' : ctx.hypervisor ? `libvirt on ${ctx.hypervisor.name}` : ctx.accel?.accelerator.toUpperCase()})`,
        `  image:    ${plan.storeBuildsDir}/${plan.artifactFile}`,
        `  size:     ${ctx.size} bytes`,
        `  sha256:   ${ctx.sha256}`,
        ...(installer
          ? [`  bmap:     ${plan.storeBuildsDir}/${plan.artifactFile}.bmap`]
          : [`  packages: ${ctx.packages?.length}`]),
        ...(ctx.createdBundle
          ? [
              `  patches:  ${ctx.project.storeDir}/${ctx.createdBundle.path} (${ctx.createdBundle.packages} packages)`,
            ]
          : []),
        ...(ctx.appliedBundle ? [`  applied:  patch bundle ${ctx.appliedBundle.id}`] : []),
        `  manifest: ${plan.manifestFile}${ctx.committed ? ' (committed)' : ' (not committed)'}`,
        `  phases:   ${timings}`,
        '',
      ].join('\n'),
    );
    await publishAfterBuild(project, plan.artifact, { skip: o.noPublish, signal: ac.signal, log });
    return ctx;
  } finally {
    untrap();
    progress.stop();
  }
}
