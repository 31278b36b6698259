/**
 * Path containment for the artifact server. A request path is accepted only when every level of
 * percent-decoding is free of NUL, backslashes, "." and ".." segments and empty segments, and it
 * names no dotfile (temporary names, rsync's partial dir). The file system check (realpath under
 * the root, so no symlink leaves it) is separate: `containedRealPath`.
 */

import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import { isInside } from '../fsx/input.js';

export type PathCheck =
  | { ok: true; segments: string[]; directory: boolean }
  | { ok: false; status: 400 | 404; reason: string };

/** How many times a path may decode to something new ("%25252e" is decoded three times). */
const MAX_DECODE_DEPTH = 4;

function badSegment(s: string): string | undefined {
  if (s.includes('\0')) return 'NUL byte';
  if (s.includes('\\')) return 'backslash';
  if (s === '.' || s === '..') return 'dot segment';
  if (s.includes('/')) return 'encoded slash';
  return undefined;
}

/**
 * Check the path part of a request URL (pure). Returns its decoded segments, or why it is refused:
 * 400 for traversal attempts and malformed encodings, 404 for hidden (dot) files.
 */
export function checkRequestPath(rawUrl: string): PathCheck {
  const q = rawUrl.search(/[?#]/);
  const raw = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (!raw.startsWith('/')) return { ok: false, status: 400, reason: 'path must start with /' };
  const directory = raw.endsWith('/');
  const rawSegments = raw.split('/').slice(1);
  if (directory) rawSegments.pop();
  const segments: string[] = [];
  for (const rawSeg of rawSegments) {
    if (rawSeg === '') return { ok: false, status: 400, reason: 'empty path segment' };
    if (/%(?![0-9A-Fa-f]{2})/.test(rawSeg))
      return { ok: false, status: 400, reason: 'malformed percent-encoding' };
    // Every level of decoding: "%252e%252e" is harmless once decoded, but refused all the same.
    const levels = [rawSeg];
    for (let s = rawSeg; /%[0-9A-Fa-f]{2}/.test(s); ) {
      if (levels.length > MAX_DECODE_DEPTH)
        return { ok: false, status: 400, reason: 'encoded too many times' };
      try {
        s = decodeURIComponent(s);
      } catch {
        return { ok: false, status: 400, reason: 'malformed percent-encoding' };
      }
      levels.push(s);
    }
    for (const level of levels) {
      const bad = badSegment(level);
      if (bad) return { ok: false, status: 400, reason: bad };
    }
    // The name on disk is the path decoded once, as HTTP clients encode it.
    const name = levels[1] ?? rawSeg;
    if (name.startsWith('.')) return { ok: false, status: 404, reason: 'hidden file' };
    segments.push(name);
  }
  return { ok: true, segments, directory };
}

export { isInside };

/**
 * The real path of root/segments when it exists and stays inside the (real) root after every
 * symlink is resolved; undefined when it does not exist or leaves the root.
 */
export async function containedRealPath(
  realRoot: string,
  segments: readonly string[],
): Promise<{ path: string; escaped: boolean } | undefined> {
  const joined = [realRoot, ...segments].join(sep);
  let real: string;
  try {
    real = await realpath(joined);
  } catch (err) {
    // A directory on the way that may not be searched: the caller answers 403 (no path shown).
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw err;
    return undefined;
  }
  return { path: real, escaped: !isInside(realRoot, real) };
}

/**
 * Is a Host header value one a server can accept (pure)? As nginx checks it, so both engines
 * answer alike: not empty (a trailing dot does not count), no "..", no "/", no NUL, no space or
 * control character; "[…]" only as an IPv6 literal at the start; the port is not checked here.
 */
export function validHost(value: string): boolean {
  let literal = false;
  let hostLen = value.length;
  let dotPos = -2;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    const c = value[i];
    if (ch <= 0x20 || ch === 0x7f || c === '/' || c === '\\') return false;
    if (c === '.') {
      if (dotPos === i - 1) return false;
      dotPos = i;
    } else if (c === ':' && !literal) {
      hostLen = i;
      break;
    } else if (c === '[' && i === 0) literal = true;
    else if (c === ']') literal = false;
  }
  if (dotPos === hostLen - 1) hostLen--;
  return hostLen > 0;
}

/**
 * A request target in absolute form ("http://host/path", RFC 9112 3.2.2, which servers must
 * accept) → its host and its origin-form path; other targets are returned as they are (pure).
 */
export function splitRequestTarget(url: string): { host?: string; path: string } {
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (!m) return { path: url };
  const rest = m[2] ?? '';
  return { host: m[1] ?? '', path: rest.startsWith('/') ? rest : `/${rest}` };
}
