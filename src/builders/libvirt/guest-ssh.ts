/**
 * How osbake reaches a build VM on a hypervisor (pure): the guest's SSH is forwarded to the
 * hypervisor's loopback only, so the way in is through the hypervisor's own sshd (ProxyCommand
 * `ssh -W`, its host key checked against the configured known_hosts; through the bastion first
 * when one is configured). The guest's host key is new with every build and reached only through
 * that pinned hop: it is not recorded. One master connection carries every command and Ansible
 * (ControlPath), and forwards the patch bundle's HTTP port back into the guest.
 */
import type { Hypervisor } from '../../config/project.js';
import {
  parseSshAddress,
  type SshTarget,
  sshDestination,
  sshTargetOfLibvirtUri,
} from '../../config/ssh-target.js';
import { shellQuote } from '../../exec/run.js';
import { sshOptions } from './uri.js';

/** ssh argv (without a command) that reaches `t` with the hypervisor's key, via `inner` if given. */
function hopArgv(h: Hypervisor, t: SshTarget, inner: string | undefined, home?: string): string[] {
  // ssh expands %h/%p in ProxyCommand: an inner ProxyCommand's own tokens are written %%h.
  const proxy = inner ? ['-o', `ProxyCommand=${inner.replaceAll('%', '%%')}`] : [];
  return ['ssh', ...sshOptions(h, t, 10, home), ...proxy, sshDestination(t)];
}

function bastionProxy(h: Hypervisor, home?: string): string | undefined {
  if (!h.bastion) return undefined;
  const b = parseSshAddress(h.bastion);
  const argv = hopArgv(h, b, undefined, home);
  return shellQuote([...argv.slice(0, -1), '-W', '%h:%p', argv.at(-1) as string]);
}

/** ssh argv (add the command) into the hypervisor itself; undefined for a local libvirt. */
export function hypervisorSshArgv(h: Hypervisor, home?: string): string[] | undefined {
  const target = sshTargetOfLibvirtUri(h.uri);
  return target ? hopArgv(h, target, bastionProxy(h, home), home) : undefined;
}

/** ProxyCommand that reaches the hypervisor's loopback (undefined for a local libvirt). */
export function guestProxyCommand(h: Hypervisor, home?: string): string | undefined {
  const argv = hypervisorSshArgv(h, home);
  if (!argv) return undefined;
  return shellQuote([...argv.slice(0, -1), '-W', '%h:%p', argv.at(-1) as string]);
}

export interface GuestSsh {
  key: string;
  port: number;
  /** The master connection's socket (≤ 108 bytes: in the temporary directory). */
  control: string;
}

/** ssh options for the build VM (the guest's key is fresh each build; the hop's key is pinned). */
export function guestSshOptions(h: Hypervisor, g: GuestSsh, home?: string): string[] {
  const proxy = guestProxyCommand(h, home);
  // -o forms only: Ansible hands the same options to sftp and scp, where -p means "preserve".
  return [
    ...['-o', `IdentityFile=${g.key}`, '-o', 'IdentitiesOnly=yes', '-o', `Port=${g.port}`],
    ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
    ...['-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20'],
    ...['-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=8'],
    ...(proxy ? ['-o', `ProxyCommand=${proxy}`] : []),
    ...['-o', `ControlPath=${g.control}`],
  ];
}

/** One command in the guest, over the master connection when it runs. */
export function guestSshArgs(h: Hypervisor, g: GuestSsh, command: string, home?: string): string[] {
  return ['ssh', ...guestSshOptions(h, g, home), '-o', 'ControlMaster=auto', 'root@127.0.0.1', command];
}

/** The master connection, forwarding the guest's 127.0.0.1:port to ours (the patch bundle). */
export function guestMasterArgs(h: Hypervisor, g: GuestSsh, forwardPort?: number, home?: string): string[] {
  const forward = forwardPort ? ['-R', `127.0.0.1:${forwardPort}:127.0.0.1:${forwardPort}`] : [];
  return [
    'ssh',
    ...guestSshOptions(h, g, home),
    ...['-o', 'ControlMaster=yes', '-o', 'ExitOnForwardFailure=yes'],
    ...forward,
    '-N',
    'root@127.0.0.1',
  ];
}

/** The command a user pastes to enter the build VM (--debug). */
export function guestEnterCommand(h: Hypervisor, g: GuestSsh, home?: string): string {
  const t = sshTargetOfLibvirtUri(h.uri);
  const opts = [
    ...['-i', g.key, '-p', String(g.port)],
    ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
  ];
  if (!t) return shellQuote(['ssh', ...opts, 'root@127.0.0.1']);
  // ssh -J does not apply command-line options to the jump host: spell the hop out.
  return shellQuote(['ssh', ...opts, '-o', `ProxyCommand=${guestProxyCommand(h, home)}`, 'root@127.0.0.1']);
}

/** The port of the patch bundle's URL as the build VM sees it (forwarded back by the master). */
export function forwardedPort(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const port = Number(new URL(url).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}
