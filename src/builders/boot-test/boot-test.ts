/**
 * Boot test of a built image (as `osbake test` and after every build): QEMU on a throwaway qcow2
 * overlay with a fresh SSH key through fw_cfg; wait for SSH; `systemctl is-system-running --wait`
 * (failed units listed); /etc/osbake-release must name the build; the image's own checks
 * (executables in images/<name>/tests/) run over SSH; power off. A boot that never answers SSH is
 * retried (TCG boots occasionally hang); the serial log's tail explains a failure.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessError, UserError } from '../../errors.js';
import { run, startService } from '../../exec/run.js';
import { consoleTailLines } from '../../log/console-text.js';
import type { Logger } from '../../log/logger.js';
import {
  buildQemuArgs,
  type Firmware,
  OVMF,
  parseBootMode,
  parseReleaseFile,
  releaseMismatches,
} from './qemu-args.js';

export const BOOT_TEST_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'ssh', 'ssh-keygen'];

export interface CheckResult {
  name: string;
  passed: boolean;
  duration_s: number;
  /** Last output lines of a failed check. */
  output?: string[];
}

export interface BootTestResult {
  passed: boolean;
  firmware: Firmware;
  accelerator: 'kvm' | 'tcg';
  duration_s: number;
  /** Seconds from QEMU start to the SSH banner. */
  boot_s: number;
  attempts: number;
  /** systemctl is-system-running: running, degraded, ... */
  state: string;
  /** How the guest says it booted (bios, uefi, secureboot), or unknown when it was not reached. */
  boot_mode: Firmware | 'unknown';
  failed_units: string[];
  release: Record<string, string>;
  release_mismatches: string[];
  checks: CheckResult[];
  /** Why it failed, in one line. */
  reason?: string;
}

export interface BootTestOptions {
  disk: string;
  /** Scratch directory (overlay, key, serial log); removed by the caller. */
  workDir: string;
  firmware: Firmware;
  accelerator: 'kvm' | 'tcg';
  /** /etc/osbake-release values that must match. */
  expect: Record<string, string>;
  /** Executables run inside the guest, in name order. */
  checksDir?: string;
  log: Logger;
  signal?: AbortSignal;
  onDetail?: (text: string) => void;
  sshTimeoutMs?: number;
  retries?: number;
  memoryMiB?: number;
  cpus?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves true once the port answers with an SSH banner (QEMU accepts before sshd listens). */
async function sshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 5000);
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\n') || buf.length > 4) done(buf.startsWith('SSH-'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(buf.startsWith('SSH-')));
  });
}

/** Executable regular files of a checks directory, sorted (pure over the listing). */
export async function listChecks(dir: string | undefined): Promise<string[]> {
  if (!dir) return [];
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.')) continue;
    const s = await stat(join(dir, n)).catch(() => undefined);
    if (s?.isFile() && (s.mode & 0o111) !== 0) out.push(n);
  }
  return out;
}

async function serialTail(file: string, n = 25): Promise<string[]> {
  return consoleTailLines(await readFile(file, 'utf8').catch(() => ''), n);
}

export async function bootTest(o: BootTestOptions): Promise<BootTestResult> {
  const t0 = Date.now();
  const log = o.log;
  const detail = o.onDetail ?? (() => undefined);
  await mkdir(o.workDir, { recursive: true });
  const key = join(o.workDir, 'test_key');
  await rm(key, { force: true });
  await rm(`${key}.pub`, { force: true });
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'osbake-boot-test', '-f', key], {
    log,
    signal: o.signal,
  });
  const attempts = 1 + (o.retries ?? 1);
  const sshTimeoutMs = o.sshTimeoutMs ?? 300_000;
  let lastReason = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const overlay = join(o.workDir, 'overlay.qcow2');
    await rm(overlay, { force: true });
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', o.disk, '-F', 'qcow2', overlay], {
      log,
      signal: o.signal,
    });
    let varsFile: string | undefined;
    if (o.firmware !== 'bios') {
      varsFile = join(o.workDir, 'OVMF_VARS.fd');
      await copyFile(OVMF[o.firmware].vars, varsFile);
    }
    const port = await freePort();
    const serial = join(o.workDir, `serial-${attempt}.log`);
    // A socket path must fit in 108 bytes: in the temporary directory, not the work directory.
    const control = join(tmpdir(), `osbake-ssh-${process.pid}-${port}`);
    let master: ReturnType<typeof startService> | undefined;
    const argv = buildQemuArgs({
      disk: overlay,
      firmware: o.firmware,
      varsFile,
      accelerator: o.accelerator,
      sshPort: port,
      publicKeyFile: `${key}.pub`,
      serialLog: serial,
      memoryMiB: o.memoryMiB ?? 1024,
      cpus: o.cpus ?? 2,
    });
    const started = Date.now();
    const vm = startService(argv, { log, tag: 'qemu' });
    let exited = false;
    void vm.exited.then(() => {
      exited = true;
    });
    const stopVm = () => vm.stop('SIGTERM', 5_000);
    const onAbort = () => void stopVm();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      detail(`booting (${o.firmware}, ${o.accelerator.toUpperCase()}, attempt ${attempt}/${attempts})`);
      let up = false;
      while (!up && !exited && Date.now() - started < sshTimeoutMs) {
        if (o.signal?.aborted) throw o.signal.reason;
        up = await sshBanner(port);
        if (!up) await new Promise((r) => setTimeout(r, 1000));
      }
      if (!up) {
        const tail = await serialTail(serial);
        lastReason = exited
          ? `QEMU exited before SSH answered`
          : `no SSH answer within ${Math.round(sshTimeoutMs / 1000)} s`;
        log.warn({ attempt, serialTail: tail }, `boot test: ${lastReason}`);
        if (exited || attempt === attempts) {
          return failed(o, t0, attempt, 0, `${lastReason}; serial console: ${tail.slice(-8).join(' | ')}`);
        }
        continue;
      }
      const bootS = (Date.now() - started) / 1000;
      // One SSH connection for the whole test (a key exchange costs about a second under TCG):
      // once the master below runs, every command rides on it (ControlPath).
      const sshOptions = [
        ...['-i', key, '-p', String(port)],
        ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
        ...['-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20'],
        ...['-o', `ControlPath=${control}`],
      ];
      const sshArgv = (command: string) => [
        'ssh',
        ...sshOptions,
        ...['-o', 'ControlMaster=auto'],
        'root@127.0.0.1',
        command,
      ];
      const ssh = (command: string, extra: { input?: string; okCodes?: number[]; timeoutMs?: number } = {}) =>
        run(sshArgv(command), {
          log,
          tag: 'ssh',
          signal: o.signal,
          input: extra.input,
          okCodes: extra.okCodes,
          timeoutMs: extra.timeoutMs ?? 300_000,
        });
      // sshd may answer before the fw_cfg key unit has run: retry the first login briefly.
      for (let i = 0; ; i++) {
        try {
          await ssh('true', { timeoutMs: 60_000 });
          break;
        } catch (err) {
          if (i >= 20 || !(err instanceof ProcessError)) throw err;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
      // The master connection: a process of its own (ControlPersist would fork one that keeps our
      // stderr pipe open), stopped with the VM.
      master = startService(['ssh', ...sshOptions, '-o', 'ControlMaster=yes', '-N', 'root@127.0.0.1'], {
        log,
        tag: 'ssh-master',
      });
      for (let i = 0; i < 50 && !(await stat(control).catch(() => undefined)); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      detail('waiting for systemd (is-system-running --wait)');
      const state = (
        await ssh('timeout 300 systemctl is-system-running --wait', { okCodes: [1, 124] })
      ).stdout.trim();
      const failedUnits = (await ssh('systemctl list-units --failed --plain --no-legend --no-pager')).stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((u) => u && u !== '●');
      // Which firmware the guest booted under, seen from inside: proof that the disk boots there.
      const bootMode = parseBootMode(
        (
          await ssh(
            'if [ -d /sys/firmware/efi ]; then echo efi; mokutil --sb-state 2>&1 || true; else echo bios; fi',
          )
        ).stdout,
      );
      const release = parseReleaseFile((await ssh('cat /etc/osbake-release', { okCodes: [1] })).stdout);
      const mismatches = releaseMismatches(release, o.expect);
      const checks: CheckResult[] = [];
      for (const name of await listChecks(o.checksDir)) {
        detail(`check ${name}`);
        const c0 = Date.now();
        const script = await readFile(join(o.checksDir as string, name), 'utf8');
        // /run and /tmp may be noexec: a private directory under /var/tmp, removed afterwards.
        const r = await ssh(
          `d=$(mktemp -d /var/tmp/osbake-check.XXXXXX) && cat > "$d/check" && chmod 700 "$d/check" && "$d/check"; rc=$?; rm -rf "$d"; exit $rc`,
          {
            input: script,
            okCodes: Array.from({ length: 255 }, (_, i) => i + 1),
          },
        );
        checks.push({
          name,
          passed: r.exitCode === 0,
          duration_s: (Date.now() - c0) / 1000,
          ...(r.exitCode === 0 ? {} : { output: r.tail.slice(-10) }),
        });
      }
      // The overlay is thrown away: the VM is stopped (finally below), not shut down.
      detail('stopping the VM');
      const reasons = [
        ...(state === 'running'
          ? []
          : [
              `system state ${state || 'unknown'}${failedUnits.length ? ` (failed: ${failedUnits.join(', ')})` : ''}`,
            ]),
        ...(bootMode === o.firmware ? [] : [`booted as ${bootMode}, not ${o.firmware} (inside the guest)`]),
        ...(mismatches.length ? [`/etc/osbake-release: ${mismatches.join(', ')}`] : []),
        ...checks.filter((c) => !c.passed).map((c) => `check ${c.name} failed`),
      ];
      return {
        passed: reasons.length === 0,
        firmware: o.firmware,
        accelerator: o.accelerator,
        duration_s: Math.round((Date.now() - t0) / 100) / 10,
        boot_s: Math.round(bootS * 10) / 10,
        attempts: attempt,
        state,
        boot_mode: bootMode,
        failed_units: failedUnits,
        release,
        release_mismatches: mismatches,
        checks,
        ...(reasons.length ? { reason: reasons.join('; ') } : {}),
      };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      await master?.stop('SIGTERM', 5_000);
      await stopVm();
      await rm(overlay, { force: true });
      await rm(control, { force: true });
    }
  }
  return failed(o, t0, attempts, 0, lastReason);
}

function failed(
  o: BootTestOptions,
  t0: number,
  attempts: number,
  bootS: number,
  reason: string,
): BootTestResult {
  return {
    passed: false,
    firmware: o.firmware,
    accelerator: o.accelerator,
    duration_s: Math.round((Date.now() - t0) / 100) / 10,
    boot_s: bootS,
    attempts,
    state: 'unreachable',
    boot_mode: 'unknown',
    failed_units: [],
    release: {},
    release_mismatches: [],
    checks: [],
    reason,
  };
}

/** The one-line error of a failed boot test. */
export function bootTestError(r: BootTestResult, what: string): UserError {
  return new UserError(
    'E_BOOT_TEST',
    `boot test of ${what} failed: ${r.reason ?? 'unknown reason'}`,
    'see the build log for the serial console and check output; --no-test skips the test (recorded)',
  );
}
