/**
 * A throwaway OpenSSH server on 127.0.0.1 for publish tests: its own host key, a throwaway
 * non-root user with a throwaway key (key auth only), and a known_hosts file built from the host
 * key. Everything is removed by stop().
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForSshBanner } from './helpers.js';

export interface TestSshd {
  port: number;
  user: string;
  uid: number;
  home: string;
  /** Mirror root on the "remote" side, owned by the user. */
  mirror: string;
  /** ssh://user@127.0.0.1:port/mirror */
  url: string;
  clientKey: string;
  knownHosts: string;
  dir: string;
  /** Run a command on the server as the user (through the real sshd). */
  ssh(command: string): string;
  stop(): Promise<void>;
}

export async function startTestSshd(): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'osbake-sshd-'));
  chmodSync(dir, 0o755);
  const user = `osbk${randomBytes(3).toString('hex')}`;
  const home = join(dir, 'home');
  execFileSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', user]);
  let sshd: ChildProcess | undefined;
  const stop = async () => {
    if (sshd && sshd.exitCode === null) {
      const exited = new Promise((r) => sshd?.on('exit', r));
      sshd.kill('SIGTERM');
      await exited;
    }
    try {
      execFileSync('userdel', [user], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // '*' instead of useradd's '!': sshd without PAM refuses accounts whose password is locked.
    execFileSync('usermod', ['-p', '*', user]);
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const mirror = join(home, 'mirror');
    mkdirSync(mirror);
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'osbake-test-host', '-f', hostKey]);
    execFileSync('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'osbake-test-client',
      '-f',
      clientKey,
    ]);
    writeFileSync(join(home, '.ssh', 'authorized_keys'), readFileSync(`${clientKey}.pub`));
    for (const p of [home, join(home, '.ssh'), join(home, '.ssh', 'authorized_keys'), mirror])
      chownSync(p, uid, gid);
    chmodSync(join(home, '.ssh'), 0o700);
    chmodSync(join(home, '.ssh', 'authorized_keys'), 0o600);
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin no',
        'UsePAM no',
        `AllowUsers ${user}`,
        'AuthorizedKeysFile .ssh/authorized_keys',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sshdLog = '';
    sshd.stderr?.on('data', (d: Buffer) => {
      sshdLog += d.toString();
    });
    if (!(await waitForSshBanner(port, 15_000))) throw new Error(`sshd did not start:\n${sshdLog}`);
    const knownHosts = join(dir, 'known_hosts');
    const pub = readFileSync(`${hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${pub}\n`);
    const ssh = (command: string) =>
      execFileSync(
        'ssh',
        [
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          `UserKnownHostsFile=${knownHosts}`,
          '-o',
          'BatchMode=yes',
          '-i',
          clientKey,
          '-p',
          String(port),
          `${user}@127.0.0.1`,
          command,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
    return {
      port,
      user,
      uid,
      home,
      mirror,
      url: `ssh://${user}@127.0.0.1:${port}${mirror}`,
      clientKey,
      knownHosts,
      dir,
      ssh,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
