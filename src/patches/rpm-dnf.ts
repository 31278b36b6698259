/**
 * dnf and rpm confined to a private installroot whose rpmdb is the image's: the argv builders
 * (pure), the root's configuration, and seeding its rpmdb from the image's rpmdb directory or from
 * its NEVRA list.
 */
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessError, UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import { checkRepos, fetchRepoFile, formatRepoFile, type RpmRepo } from './rpm-repo.js';
import { formatNevra, parseNevra, parseRpmQuery, RPM_QUERY_FORMAT, type RpmPackage } from './rpm-version.js';

/**
 * Which updates a bundle carries: `security` (default) only packages that fix a security advisory
 * (`dnf upgrade --security`, plus what they newly need); `all` every newer package.
 */
export type RpmUpdatePolicy = 'security' | 'all';

/** The image's installed packages: its rpmdb directory (exact), or its `rpm -qa` NEVRA lines. */
export type InstalledRpms = { rpmdb: string; modulesDir?: string } | { nevra: readonly string[] };

/** Where the image's rpmdb lives inside the installroot (Debian's rpm defaults to ~/.rpmdb). */
export const RPMDB_PATH = '/var/lib/rpm';

export interface DnfRoot {
  root: string;
  /** HOME for dnf and rpm: its .rpmmacros points _dbpath at RPMDB_PATH. */
  home: string;
  reposDir: string;
  config: string;
  releasever: string;
  /** module_platform_id (e.g. platform:el8): the host has no /etc/os-release PLATFORM_ID for modular repos. */
  platformId?: string;
  repos: readonly RpmRepo[];
}

/** platform:el<major> for a numeric release (8, 8.10, 9), else undefined (pure). */
export function defaultPlatformId(releasever: string): string | undefined {
  const major = /^(\d+)/.exec(releasever)?.[1];
  return major ? `platform:el${major}` : undefined;
}

/** dnf confined to the installroot and the given repositories, reading no host configuration (pure). */
export function dnfArgv(r: DnfRoot, command: readonly string[]): string[] {
  return [
    'dnf',
    '-y',
    '--noplugins',
    `--config=${r.config}`,
    `--installroot=${r.root}`,
    `--releasever=${r.releasever}`,
    `--setopt=reposdir=${r.reposDir}`,
    '--setopt=cachedir=/var/cache/osbake-dnf',
    '--setopt=install_weak_deps=False',
    '--setopt=skip_if_unavailable=False',
    '--setopt=best=True',
    ...(r.platformId ? [`--setopt=module_platform_id=${r.platformId}`] : []),
    '--disablerepo=*',
    `--enablerepo=${r.repos.map((x) => x.id).join(',')}`,
    ...command,
  ];
}

/** `dnf upgrade` that only downloads, into `destdir` (pure). */
export function upgradeCommand(policy: RpmUpdatePolicy, destdir: string): string[] {
  return [
    'upgrade',
    '--downloadonly',
    `--destdir=${destdir}`,
    ...(policy === 'security' ? ['--security'] : []),
  ];
}

export const rpmQueryArgv = (root: string): string[] => [
  'rpm',
  `--root=${root}`,
  `--dbpath=${RPMDB_PATH}`,
  '-qa',
  '--qf',
  RPM_QUERY_FORMAT,
];

export const REPOQUERY_FORMAT = '%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}\\t%{repoid}\\n';

/** Make the private installroot, repo file and configuration under `dir`. */
export async function makeDnfRoot(
  dir: string,
  repos: readonly RpmRepo[],
  releasever: string,
  platformId = defaultPlatformId(releasever),
): Promise<DnfRoot> {
  checkRepos(repos);
  const r: DnfRoot = {
    root: join(dir, 'root'),
    home: join(dir, 'home'),
    reposDir: join(dir, 'repos.d'),
    config: join(dir, 'dnf.conf'),
    releasever,
    ...(platformId ? { platformId } : {}),
    repos,
  };
  await rm(dir, { recursive: true, force: true });
  for (const d of [join(r.root, RPMDB_PATH), r.home, r.reposDir]) await mkdir(d, { recursive: true });
  await writeFile(join(r.home, '.rpmmacros'), `%_dbpath ${RPMDB_PATH}\n`);
  await writeFile(join(r.reposDir, 'osbake-sources.repo'), formatRepoFile(repos));
  await writeFile(r.config, '[main]\ngpgcheck=0\nkeepcache=0\n');
  return r;
}

export interface Io {
  log: Logger;
  signal: AbortSignal;
  onDetail?: (text: string) => void;
}

/** An rpmdb directory in the Berkeley DB format (a Packages file, no rpmdb.sqlite; pure). */
export function isBerkeleyRpmdb(files: readonly string[]): boolean {
  return files.includes('Packages') && !files.includes('rpmdb.sqlite');
}

export const dnfEnv = (r: DnfRoot) => ({ HOME: r.home });

/** dnf's own failures that the user can fix, as UserErrors (undefined for anything else; pure). */
export function dnfFailure(err: unknown): UserError | undefined {
  if (!(err instanceof ProcessError)) return undefined;
  const tail = err.outputTail;
  const match = (re: RegExp) => tail.map((l) => re.exec(l)?.[1]).filter((x): x is string => Boolean(x));
  if (tail.some((l) => /GPG check FAILED/.test(l))) {
    const failing = match(/Failing package is: (\S+)/);
    return new UserError(
      'E_PATCH_SIGNATURE',
      `packages from the source repositories fail their signature check${failing.length ? `: ${failing.join(', ')}` : ''}`,
      "check the repository's gpgkey, or whether the mirror serves tampered packages",
    );
  }
  const repo = match(/Failed to download metadata for repo '([^']+)'/)[0];
  if (repo) {
    return new UserError(
      'E_REPO_UNREACHABLE',
      `rpm repository ${repo}: dnf cannot read its metadata`,
      'check the baseurl and that the mirror is reachable',
    );
  }
  const problems = tail.filter((l) => /^\s*(Problem( \d+)?:|- )/.test(l)).map((l) => l.trim());
  if (problems.length > 0) {
    return new UserError(
      'E_PATCH_DEPSOLVE',
      `dnf cannot resolve the upgrade: ${problems.slice(0, 4).join(' ')}`,
      'the repositories lack a package the upgrade needs: add the repository that has it',
    );
  }
  return undefined;
}

/** Run dnf in the root; its user-fixable failures become UserErrors. */
export async function runDnf(
  r: DnfRoot,
  command: readonly string[],
  io: Io,
  onLine?: (line: string) => void,
): Promise<string> {
  try {
    return (await run(dnfArgv(r, command), { ...io, env: dnfEnv(r), tag: 'dnf', onLine })).stdout.trim();
  } catch (err) {
    throw dnfFailure(err) ?? err;
  }
}

/** The image's rpmdb copied in (a Berkeley DB one converted to sqlite), with its dnf module state. */
async function copyRpmdb(
  r: DnfRoot,
  installed: { rpmdb: string; modulesDir?: string },
  io: Io,
): Promise<void> {
  await cp(installed.rpmdb, join(r.root, RPMDB_PATH), { recursive: true });
  // Rocky 8 keeps a Berkeley DB rpmdb, which this rpm reads only (bdb_ro); dnf writes keys into
  // the rpmdb, so convert it to sqlite first.
  if (isBerkeleyRpmdb(await readdir(join(r.root, RPMDB_PATH)))) {
    io.onDetail?.('converting the Berkeley DB rpmdb to sqlite');
    await run(['rpmdb', `--root=${r.root}`, `--dbpath=${RPMDB_PATH}`, '--rebuilddb'], {
      ...io,
      env: dnfEnv(r),
      tag: 'rpmdb',
    });
  }
  if (installed.modulesDir) {
    await cp(installed.modulesDir, join(r.root, 'etc/dnf/modules.d'), { recursive: true });
  }
}

/** NEVRA lines: each package fetched from the source repositories and registered with rpm --justdb. */
async function registerNevras(r: DnfRoot, nevra: readonly string[], io: Io): Promise<void> {
  const wanted = nevra.map((l) => l.trim()).filter((l) => l && !l.startsWith('gpg-pubkey-'));
  const bad = wanted.filter((l) => !parseNevra(l));
  if (bad.length > 0) {
    throw new UserError(
      'E_BAD_NEVRA',
      `not a NEVRA: ${bad.slice(0, 3).join(', ')}`,
      "list packages with rpm -qa --qf '%{NEVRA}\\n'",
    );
  }
  io.onDetail?.(`locating ${wanted.length} installed package(s) in the repositories`);
  const urls = (await runDnf(r, ['repoquery', '-q', '--location', ...wanted], io))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(file|https?):\/\//.test(l));
  const seed = join(r.root, '..', 'seed');
  await mkdir(seed, { recursive: true });
  const byName = new Map(urls.map((u) => [decodeURIComponent(u.split('/').pop() ?? ''), u]));
  for (const [i, [file, url]] of [...byName].entries()) {
    io.onDetail?.(`fetching installed package ${i + 1}/${byName.size} for the rpmdb`);
    await fetchRepoFile(url, join(seed, file), io.signal);
  }
  const files = [...byName.keys()].map((f) => join(seed, f));
  if (files.length > 0) {
    await run(
      [
        ...['rpm', `--root=${r.root}`, `--dbpath=${RPMDB_PATH}`, '-i', '--justdb', '--nodeps', '--noscripts'],
        ...['--notriggers', '--nosignature', '--nodigest', '--replacefiles', '--replacepkgs', ...files],
      ],
      { ...io, env: dnfEnv(r), tag: 'rpm' },
    );
  }
  await rm(seed, { recursive: true, force: true });
}

/**
 * Put the image's packages into the installroot's rpmdb: a copy of its rpmdb directory, or, from
 * NEVRA lines, each package fetched from the source repositories and registered with
 * `rpm --justdb` (packages the repositories do not have are reported and left out).
 */
export async function seedRpmdb(r: DnfRoot, installed: InstalledRpms, io: Io): Promise<RpmPackage[]> {
  if ('rpmdb' in installed) await copyRpmdb(r, installed, io);
  else await registerNevras(r, installed.nevra, io);
  const got = parseRpmQuery(await capture(rpmQueryArgv(r.root), { ...io, env: dnfEnv(r), tag: 'rpm' }));
  if (got.length === 0) {
    throw new UserError(
      'E_NO_RPMDB',
      'the image has no installed rpm packages that osbake can read',
      'give its /var/lib/rpm, or NEVRA lines the source repositories carry',
    );
  }
  if ('nevra' in installed) {
    const have = new Set(got.map(formatNevra));
    const missing = installed.nevra
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('gpg-pubkey-') && !have.has(l));
    if (missing.length > 0) {
      io.log.warn({ missing }, 'installed packages not found in the source repositories: not patched');
      io.onDetail?.(`${missing.length} installed package(s) are not in the repositories and are not patched`);
    }
  }
  return got;
}
