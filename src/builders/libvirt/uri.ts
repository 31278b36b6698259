/**
 * libvirt connection URIs for one configured hypervisor (pure). Packer's libvirt plugin dials SSH
 * itself and needs `keyfile` plus `known_hosts` (or `no_verify=1`) in the URI; virsh (libvirt's
 * ssh transport runs the ssh binary) takes `keyfile` and `no_tty=1` so it never prompts.
 */
import { homedir } from 'node:os';
import type { Hypervisor } from '../../config/project.js';

/** "~/x" → "<home>/x" (the plugin expands ~ too, but ssh -o UserKnownHostsFile needs a path). */
export function expandHome(path: string, home: string = homedir()): string {
  return path === '~' ? home : path.startsWith('~/') ? `${home}${path.slice(1)}` : path;
}

/** The URI handed to Packer's libvirt plugin (libvirt_uri). */
export function pluginLibvirtUri(h: Hypervisor, home?: string): string {
  if (!h.uri.startsWith('qemu+ssh://')) return h.uri;
  return `${h.uri}?keyfile=${expandHome(h.sshKey, home)}&known_hosts=${expandHome(h.knownHosts, home)}`;
}

/** The URI for virsh -c (preflight, volume download). */
export function virshUri(h: Hypervisor, home?: string): string {
  if (!h.uri.startsWith('qemu+ssh://')) return h.uri;
  return `${h.uri}?keyfile=${expandHome(h.sshKey, home)}&no_tty=1`;
}

export interface SshTarget {
  user?: string;
  host: string;
  port?: number;
}

/** user@host:port of a qemu+ssh:// URI, or undefined for a local URI (qemu:///system). */
export function sshTargetOfUri(uri: string): SshTarget | undefined {
  const m = /^qemu\+ssh:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?\//.exec(uri);
  if (!m?.[2]) return undefined;
  return { user: m[1], host: m[2], port: m[3] ? Number(m[3]) : undefined };
}

/** "[user@]host[:port]" → parts (the bastion setting). */
export function parseSshTarget(s: string): SshTarget {
  const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(s);
  if (!m?.[2]) throw new Error(`bad SSH target ${s}`);
  return { user: m[1], host: m[2], port: m[3] ? Number(m[3]) : undefined };
}

/** ssh argv options that reach `t` with the hypervisor's key, non-interactively. */
export function sshOptions(h: Hypervisor, t: SshTarget, connectTimeoutS = 5, home?: string): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${connectTimeoutS}`,
    '-o',
    `UserKnownHostsFile=${expandHome(h.knownHosts, home)}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-i',
    expandHome(h.sshKey, home),
    ...(t.port ? ['-p', String(t.port)] : []),
  ];
}
