/**
 * libvirt connection URIs for one configured hypervisor (pure). Packer's libvirt plugin dials SSH
 * itself and needs `keyfile` plus `known_hosts` (or `no_verify=1`) in the URI; virsh goes over
 * libvirt's libssh transport with the same key and known_hosts (host keys are always checked).
 */
import { homedir } from 'node:os';
import type { Hypervisor } from '../../config/project.js';
import type { SshTarget } from '../../config/ssh-target.js';

/** "~/x" → "<home>/x" (the plugin expands ~ too, but ssh -o UserKnownHostsFile needs a path). */
export function expandHome(path: string, home: string = homedir()): string {
  return path === '~' ? home : path.startsWith('~/') ? `${home}${path.slice(1)}` : path;
}

/** The URI handed to Packer's libvirt plugin (libvirt_uri). */
export function pluginLibvirtUri(h: Hypervisor, home?: string): string {
  if (!h.uri.startsWith('qemu+ssh://')) return h.uri;
  return `${h.uri}?keyfile=${expandHome(h.sshKey, home)}&known_hosts=${expandHome(h.knownHosts, home)}`;
}

/**
 * The URI for virsh -c. libvirt's `ssh` transport ignores known_hosts= (tried: "Host key
 * verification failed" whatever the file), so osbake dials over libvirt's libssh transport, which
 * checks the host key against the configured known_hosts and refuses an unknown or changed one.
 */
export function virshUri(h: Hypervisor, home?: string): string {
  if (!h.uri.startsWith('qemu+ssh://')) return h.uri;
  const rest = h.uri.slice('qemu+ssh://'.length);
  return `qemu+libssh://${rest}?keyfile=${expandHome(h.sshKey, home)}&known_hosts=${expandHome(h.knownHosts, home)}&known_hosts_verify=normal&sshauth=privkey`;
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
