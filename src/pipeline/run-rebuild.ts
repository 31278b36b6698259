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
import { isAbsolute, join, relative } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { isVolatile } from '../builders/chroot/reproducible.js';
import { toolChanges, toolVersions } from '../builders/chroot/tool-versions.js';
import {
  type BuildEntry,
  buildFileOf,
  readBuildsManifest,
  withManifestLock,
  writeJsonAtomic,
} from '../config/builds.js';
import { loadProject, type Project } from '../config/project.js';
import { loadReleases, releasesFile } from '../config/releases.js';
import { ReportedError, UserError } from '../errors.js';
import { run } from '../exec/run.js';
import { trapSignals } from '../exec/signals.js';
import { makeDirsSync } from '../fsx/input.js';
import { disown, own } from '../fsx/owned.js';
import { commitRecord } from '../git/provenance.js';
import { createFileLogger, type Logger } from '../log/logger.js';
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
  /** Recorded tool versions that differ on this machine ("tool: recorded → now"). */
  tool_changes: string[];
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

/** What is rebuilt: the recorded build, its manifest entry, and what it must reach. */
export interface RebuildTarget {
  b: { image: string; artifact: string };
  builderType: string;
  cd: BuildEntry['custom_data'];
  release: string;
  expected: ReproducibleLevel;
  /** The store as the worktree has it (inside the project). */
  storeRel: string;
  fileName: string;
}

/** The build named by the user, checked: clean commit, a rebuildable builder, a release, store inside. */
async function rebuildTarget(project: Project, o: RunRebuildOptions): Promise<RebuildTarget> {
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
  const fileName = buildFileOf(entry);
  return { b, builderType: entry.builder_type, cd, release: cd.release, expected, storeRel, fileName };
}

/**
 * The recorded tool versions against this machine's, said before the build: a version that
 * differs is the first suspect of a difference.
 */
async function reportToolChanges(cd: BuildEntry['custom_data'], log: Logger, say: (l: string) => void) {
  const recorded = cd.tools as Record<string, string> | undefined;
  if (!recorded) {
    say('  note: this build recorded no tool versions (built before osbake recorded them)');
    return [];
  }
  const changes = toolChanges(recorded, await toolVersions(log, Object.keys(recorded)));
  if (changes.length === 0) say(`  tools: the recorded versions (${Object.keys(recorded).join(', ')})`);
  for (const c of changes) say(`  tool version differs: ${c}`);
  return changes;
}

/** The build's commit as a worktree, with the project's shared caches linked in where it expects them. */
export async function prepareWorktree(
  project: Project,
  t: RebuildTarget,
  tree: string,
  log: Logger,
): Promise<void> {
  await run(['git', '-C', project.root, 'worktree', 'add', '--detach', '--quiet', tree, t.cd.git_commit], {
    log,
    tag: 'git',
  });
  // The shared caches of the project, seen from the worktree where its osbake.yaml expects them:
  // the vanilla disks (workDir/cache) and the patch bundles (store/repos). Its work directories
  // and store/builds are its own. The directories are made for real and only their children
  // linked: a symlink in place of .osbake/ is not ignored by .gitignore's ".osbake/" (a pattern
  // with a slash matches directories only), and the build would be -dirty under another name.
  const workRel = insideProject(project, project.workDir);
  const cache = join(project.workDir, 'cache');
  // (Not where the commit itself holds something at that path.)
  if (workRel && !existsSync(join(tree, workRel, 'cache'))) {
    // Made if missing, so a vanilla disk the rebuild bootstraps stays in the project's cache.
    makeDirsSync(cache);
    makeDirsSync(join(tree, workRel));
    await symlink(cache, join(tree, workRel, 'cache'));
  }
  makeDirsSync(join(tree, t.storeRel));
  const repos = join(tree, t.storeRel, 'repos');
  if (existsSync(join(project.storeDir, 'repos')) && !existsSync(repos))
    await symlink(join(project.storeDir, 'repos'), repos);
}

/**
 * osbake build in the worktree, as a child (its own progress on stderr). Ctrl-C or SIGTERM: the
 * child build is stopped (it cleans up after itself), then the caller removes the worktree and
 * the exit is 130.
 */
async function buildInWorktree(t: RebuildTarget, tree: string, say: (l: string) => void): Promise<void> {
  const argv = [
    process.argv[1] ?? 'osbake',
    ...['-C', tree, 'build', t.b.image, '--release', t.release, '--builder', t.builderType],
    ...['--skip-commit', '--no-test', '--no-publish'],
  ];
  const ac = new AbortController();
  const untrap = trapSignals(ac, (sig) => say(`osbake: ${sig} received: stopping the rebuild`));
  const code = await new Promise<number>((resolve, reject) => {
    // The worktree's HEAD is detached: the build is told the branch it was made on (its name
    // is part of the artifact's name and of /etc/osbake-release).
    const child = spawn(process.execPath, argv, {
      stdio: ['ignore', process.stderr, 'inherit'],
      env: { ...process.env, OSBAKE_GIT_BRANCH: t.cd.git_branch || 'detached' },
    });
    ac.signal.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
    child.on('error', reject);
    child.on('close', (c, s) => resolve(c ?? (s ? 130 : 1)));
  }).finally(untrap);
  if (ac.signal.aborted) throw ac.signal.reason;
  if (code !== 0) {
    throw new UserError(
      'E_REBUILD',
      `the rebuild of ${t.b.artifact} failed (exit ${code})`,
      'its progress and error are above',
    );
  }
}

/** The rebuilt artifact against the recorded one: bytes, then files (minus VOLATILE), then packages. */
async function compareRebuilt(
  project: Project,
  t: RebuildTarget,
  tree: string,
  scratch: string,
  log: Logger,
): Promise<Pick<RebuildResult, 'rebuilt_sha256' | 'level' | 'differences'>> {
  const recordedFile = join(project.storeDir, 'builds', t.fileName);
  const rebuilt = join(tree, t.storeRel, 'builds', t.fileName);
  if (!existsSync(rebuilt)) {
    throw new UserError(
      'E_REBUILD',
      `the rebuild made no ${t.fileName} (the build above named its artifact otherwise)`,
      'a -dirty name means the worktree had changes: osbake rebuild --keep-work keeps it to look at',
    );
  }
  const sha = await sha256File(rebuilt);
  const sameBytes = sha === t.cd.sha256;
  const found = sameBytes ? [] : await compareImageTrees(recordedFile, rebuilt, scratch, log);
  const differences = found.filter((d) => d.kind === 'disk' || !isVolatile(d.path));
  const packages = (dir: string, missing: string) =>
    readFile(join(dir, `${t.b.artifact}.packages.tsv`), 'utf8').catch(() => missing);
  const samePackages =
    (await packages(join(project.storeDir, 'builds'), 'a')) ===
    (await packages(join(tree, t.storeRel, 'builds'), 'b'));
  const level: ReproducibleLevel = sameBytes
    ? 'bytes'
    : differences.every((d) => d.kind === 'disk') && samePackages
      ? 'files'
      : samePackages
        ? 'packages'
        : 'none';
  return { rebuilt_sha256: sha, level, differences };
}

/** The result as a person reads it (pure). */
export function rebuildText(r: RebuildResult, builderType: string): string {
  if (r.level === 'bytes')
    return `bit-identical: ${r.build}\n  sha256: ${r.rebuilt_sha256} (recorded and rebuilt)\n`;
  const shown = r.differences
    .slice(0, 50)
    .map((d) => `  ${d.kind.padEnd(8)} ${d.path}${d.detail ? `  (${d.detail})` : ''}`);
  return [
    `${r.identical ? 'same files and packages' : 'DIFFERS'}: ${r.build} (level reached: ${r.level}; expected for ${builderType}: ${r.expected_level})`,
    ...r.tool_changes.map((c) => `  tool version differs: ${c}`),
    `  recorded: ${r.recorded_sha256}`,
    `  rebuilt:  ${r.rebuilt_sha256}`,
    ...shown,
    ...(r.differences.length > 50 ? [`  … ${r.differences.length - 50} more (--json lists all)`] : []),
    '',
  ].join('\n');
}

export async function runRebuild(o: RunRebuildOptions): Promise<RebuildResult> {
  const project = await loadProject(o.projectDir);
  const t = await rebuildTarget(project, o);
  const log = createFileLogger(join(project.outDir, `rebuild-${t.b.artifact}.log`));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say(`osbake: rebuilding ${t.b.artifact} from commit ${t.cd.git_commit.slice(0, 12)}, release ${t.release}`);
  const tools = await reportToolChanges(t.cd, log, say);
  makeDirsSync(join(project.workDir, 'work'));
  const scratch = await mkdtemp(join(project.workDir, 'work', 'rebuild-'));
  own(scratch, 'work-dir');
  const tree = join(scratch, 'tree');
  try {
    await prepareWorktree(project, t, tree, log);
    await buildInWorktree(t, tree, say);
    const compared = await compareRebuilt(project, t, tree, scratch, log);
    const result: RebuildResult = {
      build: t.b.artifact,
      image: t.b.image,
      commit: t.cd.git_commit,
      release: t.release,
      recorded_sha256: t.cd.sha256,
      rebuilt_sha256: compared.rebuilt_sha256,
      identical: LEVELS.indexOf(compared.level) >= LEVELS.indexOf(t.expected),
      level: compared.level,
      expected_level: t.expected,
      tool_changes: tools,
      differences: compared.differences,
      checked: new Date().toISOString(),
    };
    await recordResult(project, t.b.image, t.b.artifact, result, o.skipCommit === true, log);
    process.stdout.write(
      o.json ? `${JSON.stringify(result, null, 2)}\n` : rebuildText(result, t.builderType),
    );
    if (!result.identical) throw new ReportedError(1);
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
  log: Logger,
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
