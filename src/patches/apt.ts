/**
 * Debian patch bundles, host side: an isolated apt configuration whose dpkg status is the image's
 * own, so `apt-get -s dist-upgrade` names exactly the packages with newer versions in the
 * security/updates channels plus the packages those newly need; `apt-get download` fetches them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface AptRoot {
  dir: string;
  options: string[];
}

/** apt -o options that confine apt to `dir` (lists, cache, status) and read no host sources. */
export function aptOptions(dir: string, statusFile: string, arch = 'amd64'): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(dir, 'sources.list.d')),
    ...o('Dir::Etc::Preferences', join(dir, 'preferences')),
    ...o('Dir::Etc::PreferencesParts', join(dir, 'preferences.d')),
    ...o('Dir::State', join(dir, 'state')),
    ...o('Dir::State::status', statusFile),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('APT::Architecture', arch),
    ...o('APT::Architectures', arch),
    ...o('Acquire::Languages', 'none'),
    ...o('APT::Get::List-Cleanup', '0'),
    ...o('Debug::NoLocking', '1'),
    ...o('APT::Sandbox::User', 'root'),
  ];
}

export async function makeAptRoot(dir: string, statusFile: string, sources: string[]): Promise<AptRoot> {
  for (const d of ['sources.list.d', 'preferences.d', 'state/lists/partial', 'cache/archives/partial']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await writeFile(join(dir, 'sources.list'), `${sources.join('\n')}\n`);
  await writeFile(join(dir, 'preferences'), '');
  return { dir, options: aptOptions(dir, statusFile) };
}

export interface PlannedPatch {
  name: string;
  /** Installed version in the image; undefined for a package the upgrade newly needs. */
  oldVersion?: string;
  newVersion: string;
  arch: string;
  /** Where the new version comes from, e.g. "Debian-Security:12/stable-security". */
  origin: string;
}

const INST_RE = /^Inst (\S+) (?:\[([^\]]+)\] )?\((\S+) (.+?) \[([^\]]+)\]\)/;

/** Parse `apt-get -s dist-upgrade` ("Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u13 Debian-Security:12/stable-security [amd64])"). */
export function parseAptSimulation(output: string): PlannedPatch[] {
  const out: PlannedPatch[] = [];
  for (const line of output.split('\n')) {
    const m = INST_RE.exec(line.trim());
    if (!m) continue;
    out.push({
      name: m[1] as string,
      oldVersion: m[2],
      newVersion: m[3] as string,
      origin: (m[4] as string).replace(/,.*$/, ''),
      arch: m[5] as string,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Packages the simulation would remove: an upgrade that needs removals is refused. */
export function parseAptRemovals(output: string): string[] {
  return output
    .split('\n')
    .map((l) => /^Remv (\S+)/.exec(l.trim())?.[1])
    .filter((x): x is string => Boolean(x));
}

export async function aptUpdate(root: AptRoot, log: Logger, signal: AbortSignal): Promise<void> {
  await run(['apt-get', ...root.options, 'update'], { log, signal, tag: 'apt' });
}

export async function aptSimulateUpgrade(root: AptRoot, log: Logger, signal: AbortSignal): Promise<string> {
  const r = await run(['apt-get', ...root.options, '-s', '-q', 'dist-upgrade'], { log, signal, tag: 'apt' });
  return r.stdout;
}

/** Download exactly these versions into `dest`. */
export async function aptDownload(
  root: AptRoot,
  patches: PlannedPatch[],
  dest: string,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  if (patches.length === 0) return;
  await mkdir(dest, { recursive: true });
  await run(
    [
      'apt-get',
      ...root.options,
      '-q',
      'download',
      ...patches.map((p) => `${p.name}:${p.arch}=${p.newVersion}`),
    ],
    {
      log,
      signal,
      cwd: dest,
      tag: 'apt',
    },
  );
}
