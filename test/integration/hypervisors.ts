/**
 * Real hypervisors on this machine for the libvirt builder's tests: the real libvirtd + virtlogd
 * (started when not running, stopped again by whoever started them), and "hosts" that are real
 * OpenSSH servers on their own loopback addresses (127.0.0.2, 127.0.0.3, …) with their own host
 * keys, each with its own storage pool. A user's hypervisor is a machine whose sshd leads to
 * libvirtd; here every host's sshd leads to the one daemon, and all traffic stays on this machine
 * (the guests use user-mode networking; their SSH is forwarded to the loopback only).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForSshBanner } from './helpers.js';

const virsh = (...args: string[]) =>
  execFileSync('virsh', ['-q', '-c', 'qemu:///system', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

function pidAlive(file: string): boolean {
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Libvirt {
  /** Stop the daemons if this call started them. */
  stop(): Promise<void>;
}

/** libvirtd and virtlogd as on a hypervisor (PID 1 is not systemd here: started by hand, FACTS). */
export async function startLibvirt(): Promise<Libvirt> {
  // No udev here: /dev/kvm is root-only, and libvirt then re-probes QEMU for about a minute on
  // every domain start. Debian's udev rule gives it to the kvm group: do the same.
  if (existsSync('/dev/kvm')) {
    execFileSync('chgrp', ['kvm', '/dev/kvm']);
    await chmod('/dev/kvm', 0o660);
  }
  const started: string[] = [];
  for (const [daemon, pidFile] of [
    ['virtlogd', '/run/virtlogd.pid'],
    ['libvirtd', '/run/libvirtd.pid'],
  ] as const) {
    if (pidAlive(pidFile)) continue;
    execFileSync(`/usr/sbin/${daemon}`, ['-d']);
    started.push(pidFile);
  }
  for (let i = 0; i < 60; i++) {
    try {
      virsh('list');
      break;
    } catch (err) {
      if (i === 59) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return {
    async stop() {
      for (const pidFile of started.reverse()) {
        if (!pidAlive(pidFile)) continue;
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 50 && pidAlive(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

export interface TestHypervisor {
  name: string;
  address: string;
  port: number;
  pool: string;
  poolDir: string;
  /** One hypervisors: entry of osbake.yaml (YAML, indented for the list). */
  yaml(o?: { slots?: number }): string;
  stop(): Promise<void>;
}

export interface HypervisorKeys {
  dir: string;
  key: string;
  knownHosts: string;
}

export async function makeHypervisorKeys(): Promise<HypervisorKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'osbake-hv-'));
  const key = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'osbake-test-builder', '-f', key]);
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, '');
  return { dir, key, knownHosts };
}

/**
 * A hypervisor "host": sshd on its own loopback address with its own host key (recorded in the
 * shared known_hosts), root's key = the builder's key, and a storage pool of its own.
 */
export async function startHypervisor(
  name: string,
  address: string,
  keys: HypervisorKeys,
): Promise<TestHypervisor> {
  const dir = join(keys.dir, name);
  await mkdir(dir, { recursive: true });
  const hostKey = join(dir, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}-host`, '-f', hostKey]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${keys.key}.pub`));
  const port = await freePort();
  await mkdir('/run/sshd', { recursive: true });
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      `ListenAddress ${address}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(dir, 'sshd.pid')}`,
      '',
    ].join('\n'),
  );
  const sshd: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: 'ignore',
  });
  if (!(await waitForSshBanner(port, 15_000, address))) throw new Error(`sshd of ${name} did not start`);
  const pub = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(keys.knownHosts, `${await readFile(keys.knownHosts, 'utf8')}[${address}]:${port} ${pub}\n`);
  // The pool's directory must be reachable by QEMU's user (libvirt-qemu).
  const poolDir = await mkdtemp(join(tmpdir(), `osbake-pool-${name}-`));
  await chmod(poolDir, 0o755);
  const pool = `osbake-test-${name}`;
  try {
    virsh('pool-destroy', pool);
  } catch {
    // not running
  }
  try {
    virsh('pool-undefine', pool);
  } catch {
    // not defined
  }
  virsh('pool-define-as', pool, 'dir', '--target', poolDir);
  virsh('pool-start', pool);
  return {
    name,
    address,
    port,
    pool,
    poolDir,
    yaml: (o = {}) =>
      [
        `  - name: ${name}`,
        `    uri: qemu+ssh://root@${address}:${port}/system`,
        `    sshKey: ${keys.key}`,
        `    knownHosts: ${keys.knownHosts}`,
        `    pool: ${pool}`,
        ...(o.slots ? [`    slots: ${o.slots}`] : []),
        '',
      ].join('\n'),
    async stop() {
      sshd.kill('SIGTERM');
      try {
        virsh('pool-destroy', pool);
        virsh('pool-undefine', pool);
      } catch {
        // already gone
      }
      await rm(poolDir, { recursive: true, force: true });
    },
  };
}

/** osbake's domains and volumes (everything whose name starts osbake-) on the local libvirtd. */
export function osbakeLeftovers(pool: string): { domains: string[]; volumes: string[] } {
  const domains = virsh('list', '--all', '--name')
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => n.startsWith('osbake-'));
  let list = '';
  try {
    list = virsh('vol-list', '--pool', pool);
  } catch {
    // no such pool (any more)
  }
  const volumes = list
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith('osbake-'));
  return { domains, volumes };
}
