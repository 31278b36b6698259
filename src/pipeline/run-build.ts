/** The `osbake build` verb: validate, plan, run the steps, report. */
import { resolve } from 'node:path';
import { loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import { distroFor } from '../distros/index.js';
import { InterruptedError, UserError } from '../errors.js';
import { readProvenance } from '../git/provenance.js';
import { createFileLogger, createNullLogger } from '../log/logger.js';
import { formatElapsed, Progress } from '../log/progress.js';
import { type BuildRequest, planBuild } from './build.js';
import { type BuildContext, buildStepsFor } from './build-steps.js';
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
    packageFile: o.packageFile ? resolve(o.packageFile) : undefined,
  };
  const installer = image.config.builder === 'installer';
  if (o.packageFile && !installer) {
    throw new UserError(
      'E_USAGE',
      `--package is for installer images; ${o.image} is built by ${image.config.builder}`,
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
  const progress = new Progress();
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
        `built ${plan.artifact} in ${formatElapsed(Date.now() - ctx.startedAt)} (${installer ? 'no VM' : ctx.accel?.accelerator.toUpperCase()})`,
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
    return ctx;
  } finally {
    untrap();
    progress.stop();
  }
}
