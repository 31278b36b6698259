/** The `osbake build` verb: validate, plan, run the steps, report. */

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type AcceleratorChoice, parseAccelerator, selectAccelerator } from '../builders/accel.js';
import { parseFirmware } from '../builders/boot-test/qemu-args.js';
import type { Builder, BuilderType, BuildJob } from '../builders/builder.js';
import {
  type BuilderChoice,
  buildNeedsAccelerator,
  checkKindOptions,
  chooseBuilder,
  resolveBuilder,
} from '../builders/choice.js';
import { createBuilder } from '../builders/registry.js';
import { type ImageDefinition, loadImage, PACKER_MANAGED_VARS } from '../config/image.js';
import { checkProjectDirs, loadProject, type Project } from '../config/project.js';
import { parseReleaseName } from '../config/releases.js';
import type { Distro } from '../distros/distro.js';
import { distroOf } from '../distros/index.js';
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { INPUT_CAPS, readInputText } from '../fsx/input.js';
import { type Provenance, readProvenance } from '../git/provenance.js';
import { createFileLogger, createNullLogger, type Logger } from '../log/logger.js';
import { formatElapsed, Progress } from '../log/progress.js';
import { publishAfterBuild } from '../publish/publish.js';
import { type BuildPlan, type BuildRequest, planBuild } from './build.js';
import type { BuildContext } from './context.js';
import { type RunnerResult, runSteps } from './runner.js';
import { imageSteps } from './steps/index.js';

export interface RunBuildOptions {
  projectDir: string;
  image: string;
  release?: string;
  skipCommit: boolean;
  debug: boolean;
  createPatches?: boolean;
  accelerator?: string;
  keepWork?: boolean;
  /** --builder auto|chroot|qemu|libvirt (default osbake.yaml builder.type). */
  builder?: string;
  /** --no-test: skip the boot test (recorded). */
  noTest?: boolean;
  /** --firmware bios|uefi|secureboot for the boot test. */
  firmware?: string;
  /** --json: the summary as JSON on stdout (progress stays on stderr). */
  json?: boolean;
  /** --var NAME=VALUE (Packer variables, repeatable). */
  packerVars?: string[];
  /** --var-file FILE (repeatable). */
  packerVarFiles?: string[];
  /** --hypervisor NAME (implies libvirt). */
  hypervisor?: string;
  /** Set by build --all: print plain progress lines prefixed with the image (builds run in parallel). */
  quietProgress?: boolean;
  /** Skip the upload to osbake.yaml's publish.to mirror after the build (--no-publish). */
  noPublish?: boolean;
  /** --package FILE (installer images only). */
  packageFile?: string;
}

/** --var NAME=VALUE: a Packer variable name, and not one osbake sets itself (pure). */
export function checkUserVars(vars: readonly string[]): void {
  for (const kv of vars) {
    const eq = kv.indexOf('=');
    const name = eq > 0 ? kv.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
      throw new UserError('E_USAGE', `--var ${JSON.stringify(kv)} is not NAME=VALUE`, 'e.g. --var cpus=4');
    }
    if (PACKER_MANAGED_VARS.has(name)) {
      throw new UserError(
        'E_USAGE',
        `--var ${name}: osbake sets the Packer variable ${name} itself`,
        'set image variables (image.yaml packer.variables, or your own template variables) only',
      );
    }
  }
}

/** --var-file F: a regular file of the project's size cap that sets no variable osbake manages. */
async function checkVarFile(file: string): Promise<void> {
  const text = await readInputText(file, { what: '--var-file', maxBytes: INPUT_CAPS.config }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      throw new UserError(
        'E_NO_FILE',
        `--var-file ${file} does not exist`,
        'give a Packer variables file (.pkrvars.hcl)',
      );
    },
  );
  for (const m of text.matchAll(/^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=/gm)) {
    const name = m[1] as string;
    if (PACKER_MANAGED_VARS.has(name)) {
      throw new UserError(
        'E_USAGE',
        `--var-file ${file} sets ${name}, a Packer variable osbake sets itself`,
        'remove it from the file; set image variables only',
      );
    }
  }
}

/** A build's inputs, every one checked before any slow work (bad input first). */
interface CheckedBuild {
  project: Project;
  image: ImageDefinition;
  distro: Distro;
  choice: BuilderChoice;
  resolved: { builder: BuilderType; reason: string };
  prov: Provenance;
  accel: AcceleratorChoice | undefined;
  req: BuildRequest;
}

/** Check the request, the project, the image, the tree and the tools' inputs; probe the accelerator. */
async function checkBuild(o: RunBuildOptions): Promise<CheckedBuild> {
  const accelerator = parseAccelerator(o.accelerator);
  if (!o.release && !o.createPatches) {
    throw new UserError(
      'E_USAGE',
      'osbake build needs --release <release>',
      `e.g. osbake build ${o.image} --release 2026.11 (the release this image belongs to)`,
    );
  }
  const release = o.release === undefined ? undefined : parseReleaseName(o.release);
  const firmware = o.firmware === undefined ? undefined : parseFirmware(o.firmware);
  const project = await loadProject(o.projectDir);
  const image = await loadImage(project, o.image);
  const distro = distroOf(image);
  const choice = chooseBuilder(project, o);
  checkKindOptions(image.config.kind, o);
  if (o.createPatches) distro.checkPatchSources(project, image);
  const prov = await readProvenance(project.root, createNullLogger());
  if (prov.dirty && !o.skipCommit) {
    const shown = prov.dirtyPaths.slice(0, 5).join(', ') + (prov.dirtyPaths.length > 5 ? ', ...' : '');
    throw new UserError(
      'E_DIRTY',
      `the git tree has uncommitted changes (${shown})`,
      'commit them, or pass --skip-commit to build a -dirty artifact whose manifest.json is not committed',
    );
  }
  // The accelerator: the qemu builder runs its VM with it, every build's boot test too, and `auto`
  // chooses the builder by it. Probed once, briefly (KVM guests can hang instead of failing).
  let accel: AcceleratorChoice | undefined;
  if (buildNeedsAccelerator(image.config.kind, choice, o.noTest)) {
    accel = await selectAccelerator(
      accelerator ?? project.config.builder.accelerator,
      project.config.builder.kvmProbeTimeoutMs,
      createNullLogger(),
    );
  }
  const resolved = resolveBuilder(image.config.kind, choice.builder, accel);
  const req: BuildRequest = {
    image: o.image,
    release,
    skipCommit: o.skipCommit,
    debug: o.debug,
    createPatches: o.createPatches,
    accelerator,
    keepWork: o.keepWork,
    builder: resolved.builder,
    hypervisor: choice.hypervisor?.name,
    noTest: o.noTest,
    firmware,
    packageFile: o.packageFile ? resolve(o.packageFile) : undefined,
  };
  checkUserVars(o.packerVars ?? []);
  for (const f of o.packerVarFiles ?? []) await checkVarFile(f);
  if (o.packageFile && !existsSync(o.packageFile)) {
    throw new UserError(
      'E_NO_FILE',
      `--package ${o.packageFile} does not exist`,
      'give the file to put on the stick',
    );
  }
  return { project, image, distro, choice, resolved, prov, accel, req };
}

/** The build's summary for --json (pure). */
function summaryJson(
  ctx: BuildContext,
  result: RunnerResult,
  c: Pick<CheckedBuild, 'resolved'>,
): Record<string, unknown> {
  const { plan, builder } = ctx;
  return {
    artifact: plan.artifact,
    image: ctx.image.name,
    release: plan.release ?? null,
    file: `${plan.storeBuildsDir}/${plan.artifactFile}`,
    size: ctx.size,
    sha256: ctx.sha256,
    packages: ctx.packages?.length ?? null,
    builder: builder.type,
    builder_reason: c.resolved.reason,
    accelerator: ctx.recordAccelerator ?? null,
    test: ctx.test ?? (builder.bootTest ? { skipped: true } : null),
    patch_bundle: ctx.createdBundle
      ? {
          id: ctx.createdBundle.id,
          path: ctx.createdBundle.path,
          packages: ctx.createdBundle.packages,
        }
      : null,
    applied_patch_bundle: ctx.appliedBundle ?? null,
    manifest: plan.manifestFile,
    committed: ctx.committed,
    log: plan.logFile,
    duration_s: Math.round((Date.now() - ctx.startedAt) / 100) / 10,
    phases: Object.fromEntries(result.timings.map((t) => [t.name, Math.round(t.ms / 100) / 10])),
  };
}

/** The build's summary as the lines a person reads (pure). */
function summaryText(ctx: BuildContext, result: RunnerResult): string {
  const { plan, builder } = ctx;
  const timings = result.timings.map((t) => `${t.name} ${(t.ms / 1000).toFixed(1)}s`).join(', ');
  const bmap = ctx.extraArtifacts?.find((a) => a.name.endsWith('.bmap'));
  return [
    `built ${plan.artifact} in ${formatElapsed(Date.now() - ctx.startedAt)} (${builder.describe()})`,
    `  image:    ${plan.storeBuildsDir}/${plan.artifactFile}`,
    `  size:     ${ctx.size} bytes`,
    `  sha256:   ${ctx.sha256}`,
    ...(bmap ? [`  bmap:     ${plan.storeBuildsDir}/${bmap.name}`] : []),
    ...(ctx.packagesFile ? [`  packages: ${ctx.packages?.length}`] : []),
    ...(ctx.test
      ? [
          `  test:     passed (${ctx.test.firmware}, ${ctx.test.accelerator.toUpperCase()}, ${ctx.test.duration_s} s, ${ctx.test.checks.length} image checks)`,
        ]
      : builder.bootTest
        ? ['  test:     skipped (--no-test)']
        : []),
    ...(ctx.createdBundle
      ? [
          `  patches:  ${ctx.project.storeDir}/${ctx.createdBundle.path} (${ctx.createdBundle.packages} packages)`,
        ]
      : []),
    ...(ctx.appliedBundle ? [`  applied:  patch bundle ${ctx.appliedBundle.id}`] : []),
    `  manifest: ${plan.manifestFile}${ctx.committed ? ' (committed)' : ' (not committed)'}`,
    `  phases:   ${timings}`,
    '',
  ].join('\n');
}

/** The end of a run in the log: outcome, timings, and why it failed (message, code, hint, output). */
function logBuildEnd(log: Logger, result: RunnerResult): void {
  log.info(
    {
      outcome: result.outcome,
      timings: result.timings,
      failedStep: result.failedStep,
      ...(result.error
        ? {
            error: result.error.message,
            code: (result.error as { code?: unknown }).code,
            hint: (result.error as { hint?: unknown }).hint,
            outputTail: (result.error as { outputTail?: unknown }).outputTail,
          }
        : {}),
    },
    'build end',
  );
}

/** The context the steps share, with the job its builder sees. */
function buildContext(
  o: RunBuildOptions,
  c: CheckedBuild,
  r: { plan: BuildPlan; log: Logger; progress: Progress; signal: AbortSignal; builder: Builder },
): BuildContext {
  const { project, image, distro, prov, accel, req, resolved } = c;
  const { plan, log, progress, signal, builder } = r;
  const job: BuildJob = {
    project,
    image,
    distro,
    log,
    progress,
    signal,
    debug: o.debug,
    buildId: plan.buildId,
    workDir: plan.workDir,
    artifact: plan.artifact,
    artifactFile: plan.artifactFile,
    release: plan.release ?? 'unreleased',
    gitCommit: prov.commit,
    accel,
    userVars: { vars: o.packerVars ?? [], varFiles: (o.packerVarFiles ?? []).map((f) => resolve(f)) },
  };
  const ctx: BuildContext = {
    project,
    image,
    distro,
    req,
    plan,
    prov,
    log,
    progress,
    signal,
    startedAt: Date.now(),
    builder,
    builderReason: resolved.reason,
    job,
    accel,
    published: [],
    recorded: false,
    committed: false,
  };
  return ctx;
}

export async function runBuild(o: RunBuildOptions): Promise<BuildContext> {
  const c = await checkBuild(o);
  const { project, image, choice, resolved, prov, accel, req } = c;
  // Every input is checked: only now may osbake touch the project's directories.
  await checkProjectDirs(project);
  const builder = createBuilder(resolved.builder, {
    hypervisor: choice.hypervisor,
    packageFile: req.packageFile,
  });
  const plan = planBuild(project, image, prov, req, builder.artifactExt);
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
  progress.say(`builder: ${builder.type} (${resolved.reason})`);
  if (accel && builder.bootTest && !o.noTest) {
    progress.say(`accelerator: ${accel.accelerator.toUpperCase()} (${accel.reason})`);
  }
  const ctx = buildContext(o, c, { plan, log, progress, signal: ac.signal, builder });
  log.info({ builder: resolved, accel }, 'builder');
  try {
    const steps = imageSteps(builder, ctx);
    const result = await runSteps(steps, ctx, ac.signal, {
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
    logBuildEnd(log, result);
    progress.stop();
    if (result.error) {
      if (result.outcome === 'failure') {
        process.stderr.write(
          `osbake: build failed at step "${result.failedStep}" (full log: ${plan.logFile})\n`,
        );
      }
      throw result.error;
    }
    process.stdout.write(
      o.json ? `${JSON.stringify(summaryJson(ctx, result, c), null, 2)}\n` : summaryText(ctx, result),
    );
    await publishAfterBuild(project, plan.artifact, { skip: o.noPublish, signal: ac.signal, log });
    return ctx;
  } finally {
    untrap();
    progress.stop();
  }
}
