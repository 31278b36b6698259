/** The `osbake test <build|image>` verb: boot a stored build and check it (as every build does). */
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { parseAccelerator, selectAccelerator } from '../builders/accel.js';
import { type BootTestResult, bootTest, bootTestError } from '../builders/boot-test/boot-test.js';
import { parseFirmware } from '../builders/boot-test/qemu-args.js';
import { buildFileOf } from '../config/builds.js';
import { checkProjectDirs, loadProject, type Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { capture } from '../exec/run.js';
import { trapSignals } from '../exec/signals.js';
import { createFileLogger, createNullLogger } from '../log/logger.js';
import { formatElapsed, Progress } from '../log/progress.js';
import { readImageBuilds } from '../release/image-builds.js';
import { existsInStore, resolveBuild } from '../release/packages.js';

export interface RunTestOptions {
  projectDir: string;
  build: string;
  firmware?: string;
  accelerator?: string;
  json?: boolean;
}

/**
 * What osbake test boots must be the store's own, as recorded: a regular file directly in
 * store/builds (no symlink, no path out of it), with the SHA-256 its manifest.json entry records,
 * and no qcow2 backing file (through one, a "build" could read any file on this machine).
 */
async function checkTestDisk(disk: string, storeDir: string, recorded: string | undefined): Promise<void> {
  const builds = join(storeDir, 'builds');
  const st = await lstat(disk);
  if (dirname(disk) !== builds || !st.isFile()) {
    throw new UserError(
      'E_TEST_DISK',
      `${disk} is not a regular file in ${builds}`,
      'osbake test boots builds of the store only (its manifest.json names them)',
    );
  }
  if (!recorded) {
    throw new UserError(
      'E_TEST_DISK',
      `${disk} has no manifest.json entry with its SHA-256: osbake cannot tell it is the build`,
      'build it with osbake (or restore images/<image>/manifest.json)',
    );
  }
  const actual = await sha256File(disk);
  if (actual !== recorded) {
    throw new UserError(
      'E_VERIFY',
      `${disk} is not as recorded: SHA-256 ${actual}, manifest.json records ${recorded}`,
      'do not boot it: build it again or restore it',
    );
  }
  const info = JSON.parse(
    await capture(['qemu-img', 'info', '--output=json', '-f', 'qcow2', disk], { log: createNullLogger() }),
  ) as { 'backing-filename'?: string; 'data-file'?: string };
  if (info['backing-filename'] || info['data-file']) {
    throw new UserError(
      'E_TEST_DISK',
      `${disk} refers to another file (${info['backing-filename'] ?? info['data-file']}): osbake does not boot it`,
      'a build of osbake is a self-contained qcow2; build it again',
    );
  }
}

/** The build to boot: its qcow2 in the store (a stick is refused) and the release it must name. */
async function testTarget(project: Project, build: string) {
  const { images } = await readImageBuilds(project);
  const b = resolveBuild(build, images, await existsInStore(project.storeDir, build));
  const entry = images
    .find((i) => i.image === b.image)
    ?.builds.find((x) => x.custom_data.artifact === b.artifact);
  const fileName = entry ? buildFileOf(entry) : `${b.artifact}.qcow2`;
  const disk = join(project.storeDir, 'builds', fileName);
  if (!existsSync(disk)) {
    throw new UserError(
      'E_NO_ARTIFACT',
      `${disk} does not exist`,
      'build it first, or fetch it into the store',
    );
  }
  if (!fileName.endsWith('.qcow2')) {
    throw new UserError(
      'E_USAGE',
      `${fileName} is not a disk image (osbake test boots qcow2 builds)`,
      'installer sticks are tested by installing from them (see README "USB installer")',
    );
  }
  await checkTestDisk(disk, project.storeDir, entry?.custom_data.sha256);
  const expect: Record<string, string> = { OSBAKE_IMAGE: b.image, OSBAKE_BUILD: b.artifact };
  if (entry?.custom_data.release) expect.OSBAKE_RELEASE = entry.custom_data.release;
  if (entry?.custom_data.git_commit) expect.OSBAKE_GIT_COMMIT = entry.custom_data.git_commit;
  return { b, disk, expect };
}

/** The result as a person reads it (pure). */
export function testReport(artifact: string, r: BootTestResult, elapsedMs: number): string {
  return [
    `${r.passed ? 'passed' : 'FAILED'}: ${artifact} in ${formatElapsed(elapsedMs)} (${r.firmware}, ${r.accelerator.toUpperCase()}, SSH after ${r.boot_s} s, attempt ${r.attempts})`,
    `  system:   ${r.state}${r.failed_units.length ? ` (failed units: ${r.failed_units.join(', ')})` : ''}`,
    `  release:  ${Object.entries(r.release)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}${r.release_mismatches.length ? ` — MISMATCH ${r.release_mismatches.join(', ')}` : ''}`,
    ...r.checks.map(
      (c) =>
        `  check:    ${c.passed ? 'pass' : 'FAIL'} ${c.name} (${c.duration_s.toFixed(1)} s)${c.output ? `\n            ${c.output.join('\n            ')}` : ''}`,
    ),
    '',
  ].join('\n');
}

export async function runTest(o: RunTestOptions): Promise<BootTestResult> {
  const firmware = parseFirmware(o.firmware);
  const accelerator = parseAccelerator(o.accelerator);
  const project = await loadProject(o.projectDir);
  const { b, disk, expect } = await testTarget(project, o.build);
  await checkProjectDirs(project, ['workDir', 'outDir']);
  const logFile = join(project.outDir, `test-${b.artifact}.log`);
  const log = createFileLogger(logFile);
  const progress = new Progress();
  const accel = await selectAccelerator(
    accelerator ?? project.config.builder.accelerator,
    project.config.builder.kvmProbeTimeoutMs,
    log,
  );
  progress.say(
    `osbake: testing ${b.artifact} (${firmware}, ${accel.accelerator.toUpperCase()}; log: ${logFile})`,
  );
  const ac = new AbortController();
  const untrap = trapSignals(ac, (s) => progress.say(`osbake: ${s} received: stopping the VM`));
  await mkdir(join(project.workDir, 'work'), { recursive: true });
  const work = await mkdtemp(join(project.workDir, 'work', 'test-'));
  const t0 = Date.now();
  try {
    const checksDir = join(project.root, 'images', b.image, 'tests');
    const r = await bootTest({
      disk,
      workDir: work,
      firmware,
      accelerator: accel.accelerator,
      expect,
      checksDir: existsSync(checksDir) ? checksDir : undefined,
      log,
      signal: ac.signal,
      onDetail: (t) => progress.detail(t),
      retries: project.config.builder.retries,
    });
    progress.stop();
    log.info({ test: r }, 'boot test');
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ build: b.artifact, ...r }, null, 2)}\n`
        : testReport(b.artifact, r, Date.now() - t0),
    );
    if (!r.passed) throw bootTestError(r, b.artifact);
    return r;
  } finally {
    untrap();
    progress.stop();
    await rm(work, { recursive: true, force: true });
  }
}
