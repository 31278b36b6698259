/**
 * osbake publish, the pure part: the ssh:// target, the ssh and rsync argv (host keys always
 * checked), the remote commands, which files a build or a release consists of and in what order
 * they go up (sidecars first, the artifact itself last), and rsync's progress and statistics.
 */
import { posix } from 'node:path';
import { type parseSshUrl, sshDestination } from '../config/ssh-target.js';
import { shellQuote } from '../exec/run.js';

/** The mirror: ssh://[user@]host[:port]/path (parsed by config/ssh-target, the one SSH target parser). */
export type SshTarget = ReturnType<typeof parseSshUrl>;

export interface SshSettings {
  target: SshTarget;
  /** known_hosts file with the mirror's key; the host key is always checked against it. */
  knownHosts: string;
  identityFile?: string;
}

/** ssh options: strict host key checking against the given known_hosts, no prompts (pure). */
export function sshOptions(s: SshSettings): string[] {
  return [
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${s.knownHosts}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=20',
    '-o',
    'ServerAliveInterval=15',
    ...(s.identityFile ? ['-o', 'IdentitiesOnly=yes', '-i', s.identityFile] : []),
    ...(s.target.port ? ['-p', String(s.target.port)] : []),
  ];
}

/** argv running one command on the mirror; the remote shell sees it quoted (pure). */
export function sshArgv(s: SshSettings, remoteArgv: readonly string[]): string[] {
  // ssh takes an IPv6 address bare; rsync's host:path needs it in brackets (sshDestination).
  const dest = `${s.target.user ? `${s.target.user}@` : ''}${s.target.host}`;
  return ['ssh', ...sshOptions(s), dest, '--', shellQuote(remoteArgv)];
}

export const PARTIAL_DIR = '.rsync-partial';

/** The hidden name a file is uploaded under before it is renamed into place. */
export function partName(remoteFile: string): string {
  return posix.join(posix.dirname(remoteFile), `.${posix.basename(remoteFile)}.part`);
}

/** rsync argv uploading one file to its temporary name, resumable (pure). */
export function rsyncArgv(s: SshSettings, local: string, remoteFile: string, bwlimitKiB?: number): string[] {
  return [
    'rsync',
    '--partial',
    `--partial-dir=${PARTIAL_DIR}`,
    '--times',
    '--chmod=F644',
    '--protect-args',
    '--stats',
    '--info=progress2',
    ...(bwlimitKiB ? [`--bwlimit=${bwlimitKiB}`] : []),
    '--rsh',
    shellQuote(['ssh', ...sshOptions(s)]),
    local,
    `${sshDestination(s.target)}:${partName(remoteFile)}`,
  ];
}

export interface PublishFile {
  /** Path relative to the store (and to the mirror root). */
  rel: string;
  /** The file on this machine. */
  local: string;
}

/** "builds/x.qcow2" → the sidecars that may sit beside it in the store. */
export function sidecarsOf(rel: string): string[] {
  const out = [`${rel}.sha256`];
  if (rel.endsWith('.qcow2')) {
    const base = rel.slice(0, -'.qcow2'.length);
    out.push(`${base}.packages.tsv`, `${base}.cdx.json`);
  }
  if (rel.endsWith('.tar.zst')) out.push(`${rel.slice(0, -'.tar.zst'.length)}.txt`);
  // A raw image's block map and its signature (bmaptool copy --bmap-sig).
  if (rel.endsWith('.raw')) out.push(`${rel}.bmap`, `${rel}.bmap-signature.asc`);
  return out;
}

/**
 * Upload order (pure): for each main file its existing sidecars, then the file; `last` (a release's
 * JSON) after everything. A file is listed once.
 */
export function orderFiles(
  main: readonly string[],
  exists: (rel: string) => boolean,
  last: string[] = [],
): string[] {
  const out: string[] = [];
  const add = (r: string) => {
    if (!out.includes(r)) out.push(r);
  };
  for (const m of main) {
    for (const s of sidecarsOf(m)) if (exists(s)) add(s);
    add(m);
  }
  for (const l of last) add(l);
  return out;
}

/** rsync --info=progress2 line → bytes transferred so far, if it is one (pure). */
export function parseRsyncProgress(line: string): number | undefined {
  const m = /^\s*([\d,]+)\s+\d+%\s/.exec(line);
  return m?.[1] ? Number(m[1].replaceAll(',', '')) : undefined;
}

/** The numbers of rsync --stats that say how much was really sent (pure). */
export function parseRsyncStats(lines: readonly string[]): {
  literal?: number;
  matched?: number;
  sent?: number;
} {
  const num = (re: RegExp) => {
    for (const l of lines) {
      const m = re.exec(l);
      if (m?.[1]) return Number(m[1].replaceAll(',', ''));
    }
    return undefined;
  };
  return {
    literal: num(/^Literal data: ([\d,]+) bytes/),
    matched: num(/^Matched data: ([\d,]+) bytes/),
    sent: num(/^Total bytes sent: ([\d,]+)/),
  };
}

/** `sha256sum` output → path → hex (pure). */
export function parseSha256sum(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const r = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (r?.[1] && r[2]) m.set(r[2], r[1]);
  }
  return m;
}
