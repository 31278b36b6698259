/**
 * The one parser of SSH targets in osbake's configuration (pure): a bastion "[user@]host[:port]",
 * a publish mirror "ssh://[user@]host[:port]/path", the host of a libvirt "qemu+ssh://" URI. Hosts
 * may be names, IPv4 or bracketed IPv6 addresses; ports are 1-65535; user names and hosts hold no
 * character an ssh command line or URI could read differently.
 */
import { posix } from 'node:path';
import { UserError } from '../errors.js';

export interface SshTarget {
  user?: string;
  host: string;
  port?: number;
}

const USER = '([A-Za-z_][A-Za-z0-9._-]*)';
const HOST = '(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)';
const PORT = '(\\d{1,5})';

function portOf(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const p = Number(text);
  if (p < 1 || p > 65535)
    throw new UserError('E_USAGE', `${what}: port ${text} is out of range`, 'use a port from 1 to 65535');
  return p;
}

const unbracket = (h: string) => h.replace(/^\[|\]$/g, '');

/** "[user@]host[:port]" → its parts (a bastion), or a UserError naming it. */
export function parseSshAddress(text: string): SshTarget {
  const m = new RegExp(`^(?:${USER}@)?${HOST}(?::${PORT})?$`).exec(text);
  if (!m?.[2]) {
    throw new UserError(
      'E_USAGE',
      `${JSON.stringify(text)} is not [user@]host[:port]`,
      'e.g. jump@bastion.example:22',
    );
  }
  return { user: m[1], host: unbracket(m[2]), port: portOf(m[3], text) };
}

/** ssh://[user@]host[:port]/absolute/path → its parts, the path normalised (no ".."). */
export function parseSshUrl(url: string): SshTarget & { path: string } {
  const m = new RegExp(`^ssh://(?:${USER}@)?${HOST}(?::${PORT})?(/[^\\0\\s]*)$`).exec(url);
  if (!m?.[2]) {
    throw new UserError(
      'E_USAGE',
      `${url} is not an ssh:// mirror URL`,
      'give ssh://user@host[:port]/absolute/path, e.g. ssh://deploy@mirror.example/srv/osbake',
    );
  }
  const path = m[4] ?? '/';
  if (path.split('/').includes('..')) {
    throw new UserError(
      'E_USAGE',
      `${url}: the path must not contain ".."`,
      'give the absolute mirror directory',
    );
  }
  return {
    user: m[1],
    host: unbracket(m[2]),
    port: portOf(m[3], url),
    path: posix.normalize(path).replace(/\/+$/, '') || '/',
  };
}

/** The SSH target of a qemu+ssh:// libvirt URI; undefined for a local one (qemu:///system). */
export function sshTargetOfLibvirtUri(uri: string): SshTarget | undefined {
  const m = new RegExp(`^qemu\\+(?:ssh|libssh)://(?:${USER}@)?${HOST}(?::${PORT})?/`).exec(uri);
  if (!m?.[2]) return undefined;
  return { user: m[1], host: unbracket(m[2]), port: portOf(m[3], uri) };
}

/** `user@host` (IPv6 bracketed) for ssh and rsync. */
export function sshDestination(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return t.user ? `${t.user}@${host}` : host;
}
