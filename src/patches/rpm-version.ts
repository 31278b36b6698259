/**
 * RPM package identities, pure: NEVRA parsing, EVR formatting and rpm's own version comparison
 * (rpmvercmp, including `~` pre-releases and `^` post-releases), for mapping advisories to upgrades.
 */

export interface RpmPackage {
  name: string;
  /** 0 when the package has no epoch. */
  epoch: number;
  version: string;
  release: string;
  arch: string;
}

/** `[epoch:]version-release`, the epoch only when it is not 0 (as dnf prints it). */
export function formatEvr(p: Pick<RpmPackage, 'epoch' | 'version' | 'release'>): string {
  return `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`;
}

/** `name-[epoch:]version-release.arch`, a spec dnf accepts. */
export function formatNevra(p: RpmPackage): string {
  return `${p.name}-${formatEvr(p)}.${p.arch}`;
}

/** Parse `name-[epoch:]version-release.arch` (`rpm -qa --qf '%{NEVRA}\n'`); undefined if it is not one. */
export function parseNevra(line: string): RpmPackage | undefined {
  const s = line.trim();
  const dot = s.lastIndexOf('.');
  const relDash = s.lastIndexOf('-', dot);
  const verDash = s.lastIndexOf('-', relDash - 1);
  if (dot < 0 || relDash < 0 || verDash <= 0) return undefined;
  const arch = s.slice(dot + 1);
  const release = s.slice(relDash + 1, dot);
  let version = s.slice(verDash + 1, relDash);
  const name = s.slice(0, verDash);
  let epoch = 0;
  const colon = version.indexOf(':');
  if (colon >= 0) {
    const e = version.slice(0, colon);
    if (!/^\d+$/.test(e)) return undefined;
    epoch = Number(e);
    version = version.slice(colon + 1);
  }
  if (!name || !version || !release || !arch || /[\s/]/.test(s)) return undefined;
  return { name, epoch, version, release, arch };
}

/** Parse the lines of `rpm -qa --qf '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n'`. */
export function parseRpmQuery(output: string): RpmPackage[] {
  const out: RpmPackage[] = [];
  for (const line of output.split('\n')) {
    const [name, epoch, version, release, arch] = line.trim().split('\t');
    if (!name || !version || !release || !arch || !/^\d+$/.test(epoch ?? '')) continue;
    out.push({ name, epoch: Number(epoch), version, release, arch });
  }
  return out;
}

/** The query format parseRpmQuery reads. */
export const RPM_QUERY_FORMAT = '%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n';

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined) =>
  c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
const isAlnum = (c: string | undefined) => isDigit(c) || isAlpha(c);

/** rpm's rpmvercmp: -1, 0 or 1. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    // A tilde sorts before everything, even the end of the string.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // A caret sorts after the end of the string but before anything else.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]);
    const test = numeric ? isDigit : isAlpha;
    let ei = i;
    let ej = j;
    while (ei < a.length && test(a[ei])) ei++;
    while (ej < b.length && test(b[ej])) ej++;
    let sa = a.slice(i, ei);
    let sb = b.slice(j, ej);
    i = ei;
    j = ej;
    // Segments of different kinds: a number is newer than letters.
    if (sb.length === 0) return numeric ? 1 : -1;
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa > sb ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i < a.length ? 1 : -1;
}

/** Compare epoch, then version, then release (rpm's order). */
export function compareEvr(
  a: Pick<RpmPackage, 'epoch' | 'version' | 'release'>,
  b: Pick<RpmPackage, 'epoch' | 'version' | 'release'>,
): number {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  return rpmvercmp(a.version, b.version) || rpmvercmp(a.release, b.release);
}
