/**
 * Preflight of a libvirt build: Packer can load plugins (>= 1.7) and has packer-plugin-libvirt,
 * the hypervisor (and bastion) answer SSH with the configured key, libvirt answers on the URI, the
 * storage pool and the vanilla volume exist. Each failure is one UserError line with the fix.
 * The argv builders are pure (tests assert them); checkLibvirtHost runs them.
 */
import type { Hypervisor } from '../../config/project.js';
import { parseSshAddress, type SshTarget, sshTargetOfLibvirtUri } from '../../config/ssh-target.js';
import { ProcessError, UserError } from '../../errors.js';
import { run } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';
import { LIBVIRT_PLUGIN_SOURCE, needsRequiredPlugins, type PackerVersion } from '../packer/packer.js';
import { sshOptions, virshUri } from './uri.js';

/** `ssh ... [user@]host true`: can we log in non-interactively? */
export function sshProbeArgs(h: Hypervisor, t: SshTarget, connectTimeoutS = 5, home?: string): string[] {
  return [
    'ssh',
    ...sshOptions(h, t, connectTimeoutS, home),
    `${t.user ? `${t.user}@` : ''}${t.host}`,
    'true',
  ];
}

export function virshArgs(h: Hypervisor, args: string[], home?: string): string[] {
  return ['virsh', '-q', '-c', virshUri(h, home), ...args];
}

/** Packer that can run the libvirt plugin, or the error that says how to get one. */
export function checkPackerForLibvirt(v: PackerVersion): void {
  if (!needsRequiredPlugins(v)) {
    throw new UserError(
      'E_PACKER_TOO_OLD',
      `Packer ${v.text} cannot load plugins; the libvirt builder needs Packer >= 1.7 with packer-plugin-libvirt`,
      `install Packer >= 1.7 (HashiCorp's release), then: packer plugins install ${LIBVIRT_PLUGIN_SOURCE}; or build with --builder qemu`,
    );
  }
}

/** Does `packer plugins installed` (Packer >= 1.8) list the libvirt plugin? */
export function pluginListed(output: string): boolean {
  return output.split('\n').some((l) => /packer-plugin-libvirt/.test(l) && /thomasklein94/.test(l));
}

/** The last meaningful line of a failed command's output (for the one-line error). */
export function lastLine(lines: string[]): string {
  const meaningful = lines.map((l) => l.trim()).filter((l) => l && !/^error: failed to connect/i.test(l));
  return (
    meaningful.at(-1) ??
    lines
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ??
    'no output'
  );
}

export interface LibvirtCheckOptions {
  log: Logger;
  signal?: AbortSignal;
  packer?: PackerVersion;
  /** Seconds for ssh ConnectTimeout; virsh gets a few times that. */
  connectTimeoutS?: number;
  home?: string;
  progress?: (text: string) => void;
}

async function attempt(
  argv: string[],
  o: LibvirtCheckOptions,
  fail: (detail: string) => UserError,
): Promise<string> {
  try {
    const r = await run(argv, {
      log: o.log,
      signal: o.signal,
      tailLines: 10,
      timeoutMs: 4 * 1000 * (o.connectTimeoutS ?? 5) + 5000,
    });
    return r.stdout;
  } catch (err) {
    if (err instanceof ProcessError) {
      throw fail(err.signal?.startsWith('timeout') ? `no answer (${err.signal})` : lastLine(err.outputTail));
    }
    throw err;
  }
}

/** Packer's libvirt plugin, for hypervisors of engine packer (Packer ≥ 1.8 lists its plugins). */
async function checkPackerPlugin(
  o: LibvirtCheckOptions & { packer: PackerVersion },
  say: (l: string) => void,
) {
  checkPackerForLibvirt(o.packer);
  if (o.packer.major <= 1 && o.packer.minor < 8) return;
  say('packer plugins installed');
  const out = await attempt(
    ['packer', 'plugins', 'installed'],
    o,
    (d) =>
      new UserError(
        'E_PACKER_PLUGINS',
        `packer plugins installed failed: ${d}`,
        'check the Packer installation',
      ),
  );
  if (!pluginListed(out)) {
    throw new UserError(
      'E_LIBVIRT_PLUGIN_MISSING',
      'Packer has no libvirt plugin (packer plugins installed does not list packer-plugin-libvirt)',
      `install it: packer plugins install ${LIBVIRT_PLUGIN_SOURCE}`,
    );
  }
}

/** SSH to the hypervisor (from its URI) and to its bastion, each with the pinned host key. */
async function checkHypervisorSsh(h: Hypervisor, o: LibvirtCheckOptions, say: (l: string) => void) {
  const target = sshTargetOfLibvirtUri(h.uri);
  const ct = o.connectTimeoutS ?? 5;
  if (target) {
    const where = `${target.user ? `${target.user}@` : ''}${target.host}:${target.port ?? 22}`;
    say(`ssh ${where}`);
    await attempt(
      sshProbeArgs(h, target, ct, o.home),
      o,
      (d) =>
        new UserError(
          'E_HYPERVISOR_SSH',
          `hypervisor ${h.name}: cannot log in over SSH to ${where}: ${d}`,
          `check that the host is up, that ${h.sshKey} is in ${target.user ?? 'root'}'s authorized_keys there, and that its host key is in ${h.knownHosts} (ssh-keyscan ${target.host} >> ${h.knownHosts})`,
        ),
    );
  }
  if (h.bastion) {
    const b = parseSshAddress(h.bastion);
    say(`ssh bastion ${h.bastion}`);
    await attempt(
      sshProbeArgs(h, b, ct, o.home),
      o,
      (d) =>
        new UserError(
          'E_BASTION_SSH',
          `hypervisor ${h.name}: cannot log in to the bastion ${h.bastion}: ${d}`,
          `authorize ${h.sshKey} on the bastion and add its host key to ${h.knownHosts}, or remove bastion:`,
        ),
    );
  }
}

/** libvirt answers on the URI, the pool is usable, and (engine packer) the vanilla volume is there. */
async function checkLibvirtStorage(h: Hypervisor, o: LibvirtCheckOptions, say: (l: string) => void) {
  say(`virsh -c ${h.uri} version`);
  await attempt(
    virshArgs(h, ['version'], o.home),
    o,
    (d) =>
      new UserError(
        'E_LIBVIRT_CONNECT',
        `hypervisor ${h.name}: libvirt does not answer on ${h.uri}: ${d}`,
        'check that libvirtd (or virtqemud) runs on the host and that the URI is right (qemu+ssh://root@HOST/system)',
      ),
  );
  say(`virsh pool-info ${h.pool}`);
  await attempt(
    virshArgs(h, ['pool-info', h.pool], o.home),
    o,
    (d) =>
      new UserError(
        'E_LIBVIRT_POOL',
        `hypervisor ${h.name}: storage pool "${h.pool}" is not usable: ${d}`,
        `list the pools with: virsh -c ${h.uri} pool-list --all (start it with pool-start), or fix hypervisors[].pool`,
      ),
  );
  if (h.engine === 'packer' && h.vanillaVolume) {
    const vol = h.vanillaVolume;
    say(`virsh vol-info --pool ${h.pool} ${vol}`);
    await attempt(
      virshArgs(h, ['vol-info', '--pool', h.pool, vol], o.home),
      o,
      (d) =>
        new UserError(
          'E_LIBVIRT_VOLUME',
          `hypervisor ${h.name}: vanilla volume "${vol}" is not in pool "${h.pool}": ${d}`,
          `upload it (virsh -c ${h.uri} vol-create-as ${h.pool} ${vol} 8G --format qcow2, then vol-upload), or fix hypervisors[].vanillaVolume`,
        ),
    );
  }
}

/** Run every check for one hypervisor; the first failure throws a UserError naming the fix. */
export async function checkLibvirtHost(h: Hypervisor, o: LibvirtCheckOptions): Promise<void> {
  const say = o.progress ?? (() => undefined);
  if (o.packer) await checkPackerPlugin({ ...o, packer: o.packer }, say);
  await checkHypervisorSsh(h, o, say);
  await checkLibvirtStorage(h, o, say);
}
