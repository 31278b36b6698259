/**
 * `osbake rebuild IMAGE|BUILD [RELEASE]`: build a recorded build again from its recorded inputs —
 * its commit (a git worktree in a scratch directory), its release, the vanilla disk cache and the
 * patch bundles of the project — and compare the result with the recorded SHA-256. The same bytes
 * are proof that the image is what its commit says; a difference is shown file by file (path,
 * type, size, mode, owner, SHA-256) from the two root file systems. The result is recorded in the
 * build's manifest.json entry (`custom_data.reproducible`), which `osbake images` and serve show.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { isVolatile } from '../builders/chroot/reproducible.js';
import { readBuildsManifest, withManifestLock, writeJsonAtomic } from '../config/builds.js';
import { loadProject, type Project } from '../config/project.js';
import { loadReleases, releasesFile } from '../config/releases.js';
import { ReportedError, UserError } from '../errors.js';
import { run } from '../exec/run.js';
import { trapSignals } from '../exec/signals.js';
import { makeDirsSync } from '../fsx/input.js';
import { disown, own } from '../fsx/owned.js';
import { commitRecord } from '../git/provenance.js';
import { createFileLogger } from '../log/logger.js';
import { manifestFileOf, readImageBuilds } from '../release/image-builds.js';
import { existsInStore, resolveBuild } from '../release/packages.js';
import { compareImageTrees, type TreeDifference } from './compare-trees.js';

export interface RunRebuildOptions {
  projectDir: string;
  build: string;
  release?: string;
  json?: boolean;
  skipCommit?: boolean;
  keepWork?: boolean;
}

export type ReproducibleLevel = 'bytes' | 'files' | 'packages' | 'none';
const LEVELS: ReproducibleLevel[] = ['none', 'packages', 'files', 'bytes'];
const EXPECTED_LEVEL: Record<string, ReproducibleLevel> = { chroot: 'bytes', qemu: 'files' };

export interface RebuildResult {
  build: string;
  image: string;
  commit: string;
  release: string;
  recorded_sha256: string;
  rebuilt_sha256: string;
  identical: boolean;
  /** The highest level at which the rebuild equals the recorded build. */
  level: ReproducibleLevel;
  /** The level this builder's builds must reach (bytes for chroot, files for booted builders). */
  expected_level: ReproducibleLevel;
  differences: TreeDifference[];
  checked: string;
}

/** The artifact a release records for an image (pure on the release file's content). */
async function releasedBuild(project: Project, image: string, release: string): Promise<string> {
  const { releases } = await loadReleases(releasesFile(project));
  const r = releases[release];
  if (!r)
    throw new UserError(
      'E_NO_RELEASE',
      `release ${release} is not in manifest.yaml`,
      'osbake images lists the releases',
    );
  const a = r.artifacts.find((x) => x.kind === 'image' && x.name === image);
  if (!a?.build) {
    throw new UserError(
      'E_NO_BUILD',
      `release ${release} records no build of ${image}`,
      `osbake release ${release} records it`,
    );
  }
  return a.build;
}

/** A path of the project as the worktree has it (undefined when it is outside the project). */
function insideProject(project: Project, path: string): string | undefined {
  const rel = relative(project.root, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : undefined;
}

export async function runRebuild(o: RunRebuildOptions): Promise<RebuildResult> {
  const project = await loadProject(o.projectDir);
  const { images } = await readImageBuilds(project);
  const name = o.release ? await releasedBuild(project, o.build, o.release) : o.build;
  const b = resolveBuild(name, images, await existsInStore(project.storeDir, name));
  const entry = images
    .find((i) => i.image === b.image)
    ?.builds.find((x) => x.custom_data.artifact === b.artifact);
  if (!entry)
    throw new UserError(
      'E_NO_BUILD',
      `${b.artifact} has no manifest.json entry`,
      'osbake images lists the builds',
    );
  const cd = entry.custom_data;
  if (cd.git_dirty) {
    throw new UserError(
      'E_REBUILD',
      `${b.artifact} was built from uncommitted changes: no commit holds its inputs`,
      'commit, build again, then rebuild that build',
    );
  }
  // The chroot builder's builds must come back bit for bit; a booted builder's (a VM ran the
  // playbook) with the same files and packages (bytes of a booted file system are not stable).
  const expected = EXPECTED_LEVEL[entry.builder_type];
  if (!expected) {
    throw new UserError(
      'E_REBUILD',
      `${b.artifact} was built by the ${entry.builder_type} builder, which osbake rebuild cannot run again here`,
      'rebuild builds of the chroot builder (bit for bit) or of the qemu builder (files and packages)',
    );
  }
  if (!cd.release)
    throw new UserError('E_REBUILD', `${b.artifact} records no release`, 'build with --release R');
  const storeRel = insideProject(project, project.storeDir);
  if (!storeRel) {
    throw new UserError(
      'E_REBUILD',
      `the store ${project.storeDir} is outside the project: the rebuild would replace the recorded artifact`,
      'keep the store inside the project (store: store in osbake.yaml)',
    );
  }
  const fileName = entry.files?.[0]?.name ?? `${b.artifact}.qcow2`;
  const recorded = cd.sha256;
  const log = createFileLogger(join(project.outDir, `rebuild-${b.artifact}.log`));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  // The tools that made the image: a version that differs is the first suspect of a difference.
  const tools = cd.tools as Record<string, string> | undefined;
  say(`osbake: rebuilding ${b.artifact} from commit ${cd.git_commit.slice(0, 12)}, release ${cd.release}`);
  if (!tools) say('  note: this build recorded no tool versions (built before osbake recorded them)');

  makeDirsSync(join(project.workDir, 'work'));
  const scratch = await mkdtemp(join(project.workDir, 'work', 'rebuild-'));
  own(scratch, 'work-dir');
  const tree = join(scratch, 'tree');
  try {
    await run(['git', '-C', project.root, 'worktree', 'add', '--detach', '--quiet', tree, cd.git_commit], {
      log,
      tag: 'git',
    });
    // The shared caches of the project, seen from the worktree where its osbake.yaml expects them:
    // the vanilla disks (workDir) and the patch bundles (store/repos). Its store/builds is its own.
    const workRel = insideProject(project, project.workDir);
    // (Not where the commit itself holds something at that path.)
    if (workRel && !existsSync(join(tree, workRel))) {
      makeDirsSync(dirname(join(tree, workRel)));
      await symlink(project.workDir, join(tree, workRel));
    }
    makeDirsSync(join(tree, storeRel));
    const repos = join(tree, storeRel, 'repos');
    if (existsSync(join(project.storeDir, 'repos')) && !existsSync(repos))
      await symlink(join(project.storeDir, 'repos'), repos);
    const argv = [
      process.argv[1] ?? 'osbake',
      '-C',
      tree,
      'build',
      b.image,
      '--release',
      cd.release,
      '--builder',
      entry.builder_type,
      '--skip-commit',
      '--no-test',
      '--no-publish',
    ];
    // Ctrl-C or SIGTERM: the child build is stopped (it cleans up after itself), then the worktree
    // goes (finally below) and the exit is 130.
    const ac = new AbortController();
    const untrap = trapSignals(ac, (sig) => say(`osbake: ${sig} received: stopping the rebuild`));
    const code = await new Promise<number>((resolve, reject) => {
      // The worktree's HEAD is detached: the build is told the branch it was made on (its name
      // is part of the artifact's name and of /etc/osbake-release).
      const child = spawn(process.execPath, argv, {
        stdio: ['ignore', process.stderr, 'inherit'],
        env: { ...process.env, OSBAKE_GIT_BRANCH: cd.git_branch || 'detached' },
      });
      ac.signal.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
      child.on('error', reject);
      child.on('close', (c, s) => resolve(c ?? (s ? 130 : 1)));
    }).finally(untrap);
    if (ac.signal.aborted) throw ac.signal.reason;
    if (code !== 0) {
      throw new UserError(
        'E_REBUILD',
        `the rebuild of ${b.artifact} failed (exit ${code})`,
        'its progress and error are above',
      );
    }
    const rebuilt = join(tree, storeRel, 'builds', fileName);
    const sha = await sha256File(rebuilt);
    const sameBytes = sha === recorded;
    const found = sameBytes
      ? []
      : await compareImageTrees(join(project.storeDir, 'builds', fileName), rebuilt, scratch, log);
    // Below the bytes: the files (minus the documented volatile list), then the package sets.
    const differences = found.filter((d) => d.kind === 'disk' || !isVolatile(d.path));
    const samePackages =
      (await readFile(join(project.storeDir, 'builds', `${b.artifact}.packages.tsv`), 'utf8').catch(
        () => 'a',
      )) ===
      (await readFile(join(tree, storeRel, 'builds', `${b.artifact}.packages.tsv`), 'utf8').catch(() => 'b'));
    const level: ReproducibleLevel = sameBytes
      ? 'bytes'
      : differences.every((d) => d.kind === 'disk') && samePackages
        ? 'files'
        : samePackages
          ? 'packages'
          : 'none';
    const identical = LEVELS.indexOf(level) >= LEVELS.indexOf(expected);
    const result: RebuildResult = {
      build: b.artifact,
      image: b.image,
      commit: cd.git_commit,
      release: cd.release,
      recorded_sha256: recorded,
      rebuilt_sha256: sha,
      identical,
      level,
      expected_level: expected,
      differences,
      checked: new Date().toISOString(),
    };
    await recordResult(project, b.image, b.artifact, result, o.skipCommit === true, log);
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        level === 'bytes'
          ? `bit-identical: ${b.artifact}\n  sha256: ${sha} (recorded and rebuilt)\n`
          : `${identical ? 'same files and packages' : 'DIFFERS'}: ${b.artifact} (level reached: ${level}; expected for ${entry.builder_type}: ${expected})\n  recorded: ${recorded}\n  rebuilt:  ${sha}\n${differences
              .slice(0, 50)
              .map((d) => `  ${d.kind.padEnd(8)} ${d.path}${d.detail ? `  (${d.detail})` : ''}`)
              .join(
                '\n',
              )}${differences.length > 50 ? `\n  … ${differences.length - 50} more (--json lists all)` : ''}\n`,
      );
    }
    if (!identical) throw new ReportedError(1);
    return result;
  } finally {
    await run(['git', '-C', project.root, 'worktree', 'remove', '--force', tree], { log, tag: 'git' }).catch(
      () => undefined,
    );
    if (!o.keepWork) {
      await rm(scratch, { recursive: true, force: true });
      disown(scratch);
    }
  }
}

/** custom_data.reproducible of the build, under manifest.json's lock; committed unless asked not to. */
async function recordResult(
  project: Project,
  image: string,
  artifact: string,
  r: RebuildResult,
  skipCommit: boolean,
  log: ReturnType<typeof createFileLogger>,
): Promise<void> {
  const file = manifestFileOf(project, image);
  await withManifestLock(file, async () => {
    const m = await readBuildsManifest(file);
    for (const b of m.builds) {
      if (b.custom_data.artifact !== artifact) continue;
      b.custom_data.reproducible = {
        checked: r.checked,
        level: r.level,
        identical: r.identical,
        rebuilt_sha256: r.rebuilt_sha256,
        differences: r.differences.length,
      };
    }
    await writeJsonAtomic(file, m);
  });
  if (!skipCommit) {
    await commitRecord(
      project.root,
      file,
      [
        `rebuilt ${artifact}: ${r.level === 'bytes' ? 'bit-identical' : r.identical ? `same ${r.level}` : 'DIFFERS'}`,
        `sha256: ${r.rebuilt_sha256}; level: ${r.level}`,
      ],
      log,
    );
  }
}
