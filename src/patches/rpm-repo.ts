/**
 * Source rpm repositories (file:// or http(s):// baseurls): the private dnf repo file that names
 * them, and reading one kind of metadata (updateinfo, modules) through repomd.xml.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { UserError } from '../errors.js';
import { capture } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export interface RpmRepo {
  /** dnf repo id: letters, digits, `-_.:` */
  id: string;
  /** file:///path/ or http(s)://host/path/ (the directory holding repodata/) */
  baseurl: string;
  /**
   * The repository's signing key(s) (file:/// or http(s):// URL, as a .repo file's gpgkey): every
   * downloaded package must carry a valid signature by it (dnf gpgcheck). Without it, no check.
   */
  gpgkey?: string;
}

/** Refuse repo ids and URLs dnf would misread (pure). */
export function checkRepos(repos: readonly RpmRepo[]): void {
  if (repos.length === 0) {
    throw new UserError(
      'E_NO_REPOS',
      'no rpm repositories to take updates from',
      'give at least one baseurl',
    );
  }
  const ids = new Set<string>();
  for (const r of repos) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(r.id) || ids.has(r.id)) {
      throw new UserError(
        'E_BAD_REPO',
        `rpm repository id ${JSON.stringify(r.id)} is invalid or repeated`,
        'use unique ids of letters, digits and -_.:',
      );
    }
    ids.add(r.id);
    if (r.gpgkey !== undefined && !/^(file:\/\/\/|https?:\/\/)\S+$/.test(r.gpgkey)) {
      throw new UserError(
        'E_BAD_REPO',
        `rpm repository ${r.id}: gpgkey ${JSON.stringify(r.gpgkey)} is not a file:/// or http(s):// URL`,
        'write an absolute URL, e.g. file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-8',
      );
    }
    if (!/^(file:\/\/\/|https?:\/\/)\S+$/.test(r.baseurl)) {
      throw new UserError(
        'E_BAD_REPO',
        `rpm repository ${r.id}: baseurl ${JSON.stringify(r.baseurl)} is not file:/// or http(s)://`,
        'write an absolute URL',
      );
    }
  }
}

/** A yum/dnf .repo file for the repositories (pure): gpgcheck where a key is given. */
export function formatRepoFile(repos: readonly RpmRepo[]): string {
  return repos
    .map((r) =>
      [
        `[${r.id}]`,
        `name=${r.id}`,
        `baseurl=${r.baseurl}`,
        'enabled=1',
        ...(r.gpgkey ? ['gpgcheck=1', `gpgkey=${r.gpgkey}`] : ['gpgcheck=0']),
        'skip_if_unavailable=0',
        '',
      ].join('\n'),
    )
    .join('\n');
}

/** Locations of the metadata files listed in repomd.xml, by type (pure). */
export function parseRepomd(xml: string): Map<string, string> {
  const doc = new DOMParser({ onError: () => undefined }).parseFromString(xml, 'text/xml');
  const out = new Map<string, string>();
  for (const data of Array.from(doc.getElementsByTagName('data'))) {
    const href = data.getElementsByTagName('location')[0]?.getAttribute('href');
    const type = data.getAttribute('type');
    if (type && href) out.set(type, href);
  }
  return out;
}

const joinUrl = (base: string, rel: string) => `${base.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;

/** Copy one file of a repository to `dest` (file:// is copied, http(s):// fetched). */
export async function fetchRepoFile(url: string, dest: string, signal?: AbortSignal): Promise<void> {
  if (url.startsWith('file://')) {
    await copyFile(fileURLToPath(url), dest);
    return;
  }
  const res = await fetch(url, { signal });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  await writeFile(dest, Buffer.from(await res.arrayBuffer()));
}

/** The text of one kind of metadata ("updateinfo", "modules"), or undefined when the repo has none. */
export async function readRepoMetadata(
  repo: RpmRepo,
  type: string,
  tmpDir: string,
  log: Logger,
  signal: AbortSignal,
): Promise<string | undefined> {
  await mkdir(tmpDir, { recursive: true });
  const repomd = join(tmpDir, `${repo.id}-repomd.xml`);
  try {
    await fetchRepoFile(joinUrl(repo.baseurl, 'repodata/repomd.xml'), repomd, signal);
  } catch (err) {
    throw new UserError(
      'E_REPO_UNREACHABLE',
      `rpm repository ${repo.id}: cannot read repodata/repomd.xml at ${repo.baseurl} (${err instanceof Error ? err.message : String(err)})`,
      'check the baseurl and that the mirror is reachable',
    );
  }
  const href = parseRepomd(await readFile(repomd, 'utf8')).get(type);
  if (!href) return undefined;
  const file = join(tmpDir, `${repo.id}-${basename(href)}`);
  await fetchRepoFile(joinUrl(repo.baseurl, href), file, signal);
  log.info({ repo: repo.id, type, href }, 'repository metadata');
  if (file.endsWith('.gz')) return gunzipSync(await readFile(file)).toString('utf8');
  const tool = file.endsWith('.xz')
    ? 'xz'
    : file.endsWith('.bz2')
      ? 'bzip2'
      : file.endsWith('.zst')
        ? 'zstd'
        : undefined;
  if (!tool) return readFile(file, 'utf8');
  return `${await capture([tool, '-dc', file], { log: quiet(log), signal, tag: tool })}\n`;
}

/** Metadata text is large: keep it out of the log. */
function quiet(log: Logger): Logger {
  return log.child({}, { level: 'warn' });
}
