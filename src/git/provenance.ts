/** Where a build comes from: branch, commit, dirty state; and the commit of manifest.json after it. */
import { join, relative, resolve } from 'node:path';
import { withManifestLock } from '../config/builds.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export interface Provenance {
  branch: string;
  commit: string;
  shortCommit: string;
  dirty: boolean;
  dirtyPaths: string[];
}

/**
 * Paths that are osbake's outputs and state, not inputs: changing them does not make a tree dirty
 * (an image's manifest.json; .osbake/, where the ledger and node records live).
 */
export function isBuildRecord(path: string): boolean {
  return /^images\/[^/]+\/manifest\.json$/.test(path) || path.startsWith('.osbake/');
}

/** Paths from `git status --porcelain=v1 -z` output. */
export function parsePorcelain(out: string): string[] {
  const paths: string[] = [];
  const fields = out.split('\0').filter(Boolean);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as string;
    const status = f.slice(0, 2);
    paths.push(f.slice(3));
    if (status.includes('R') || status.includes('C')) i++; // rename: the next field is the old path
  }
  return paths;
}

/**
 * The branch name of a detached HEAD: OSBAKE_GIT_BRANCH when set (a CI job that checks out a
 * commit, `osbake rebuild`'s worktree: the branch the build was made on), else "detached".
 */
export function detachedBranchName(env: NodeJS.ProcessEnv = process.env): string {
  const name = env.OSBAKE_GIT_BRANCH;
  if (name === undefined || name === '') return 'detached';
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/.test(name) || name.includes('..')) {
    throw new UserError(
      'E_USAGE',
      'OSBAKE_GIT_BRANCH is not a branch name (letters, digits, ".", "_", "/", "-")',
      'set it to the branch the commit belongs to, or unset it',
    );
  }
  return name;
}

export async function readProvenance(root: string, log: Logger): Promise<Provenance> {
  const git = (args: string[]) => capture(['git', '-C', root, ...args], { log, tag: 'git' });
  try {
    await git(['rev-parse', '--verify', 'HEAD']);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(
      'E_NO_GIT',
      `${root} is not a git repository with at least one commit`,
      'osbake names artifacts after the git commit: run git init and commit the image definitions',
    );
  }
  const branchRaw = await git(['rev-parse', '--abbrev-ref', 'HEAD']);
  const commit = await git(['rev-parse', 'HEAD']);
  const shortCommit = await git(['rev-parse', '--short=8', 'HEAD']);
  const status = await run(['git', '-C', root, 'status', '--porcelain=v1', '-z', '--untracked-files=all'], {
    log,
    tag: 'git',
  });
  const dirtyPaths = parsePorcelain(status.stdout).filter((p) => !isBuildRecord(p));
  return {
    branch: branchRaw === 'HEAD' ? detachedBranchName() : branchRaw,
    commit,
    shortCommit,
    dirty: dirtyPaths.length > 0,
    dirtyPaths,
  };
}

/** Commit only manifest.json, with the seed's message. */
export async function commitManifest(
  root: string,
  manifestFile: string,
  image: string,
  prov: Provenance,
  artifact: string,
  log: Logger,
): Promise<void> {
  await commitRecord(
    root,
    manifestFile,
    [`created new image for ${image} from commit ${prov.shortCommit}`, `artifact: ${artifact}`],
    log,
  );
}

/**
 * Commit one record file osbake wrote (manifest.json of an image, manifest.yaml of the releases)
 * and nothing else, under the project's commit lock (git allows one index writer at a time).
 */
export async function commitRecord(
  root: string,
  file: string,
  message: string[],
  log: Logger,
): Promise<void> {
  const rel = relative(root, file);
  const gitDir = resolve(
    root,
    await capture(['git', '-C', root, 'rev-parse', '--git-common-dir'], { log, tag: 'git' }),
  );
  await withManifestLock(join(gitDir, 'osbake-commit'), async () => {
    await run(['git', '-C', root, 'add', '--', rel], { log, tag: 'git' });
    await run(['git', '-C', root, 'commit', '--quiet', ...message.flatMap((m) => ['-m', m]), '--', rel], {
      log,
      tag: 'git',
    });
  });
}
