/** Inside the booted guest: one SSH session, systemd's state, the firmware, the release, the image's checks. */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessError } from '../../errors.js';
import { run, startService } from '../../exec/run.js';
import { type Firmware, parseBootMode, parseReleaseFile, releaseMismatches } from './qemu-args.js';
import type { BootTestOptions, BootTestResult, CheckResult } from './types.js';

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

type GuestSsh = (
  command: string,
  extra?: { input?: string; okCodes?: number[]; timeoutMs?: number },
) => ReturnType<typeof run>;

/**
 * One SSH connection for the whole test (a key exchange costs about a second under TCG): after a
 * first login (retried briefly: sshd may answer before the fw_cfg key unit has run), a master
 * connection that every command rides on (ControlPath). stop() ends the master.
 */
export async function openGuestSession(
  o: BootTestOptions,
  key: string,
  port: number,
): Promise<{ ssh: GuestSsh; stop: () => Promise<void> }> {
  // A socket path must fit in 108 bytes: in the temporary directory, not the work directory.
  const control = join(tmpdir(), `osbake-ssh-${process.pid}-${port}`);
  const sshOptions = [
    ...['-i', key, '-p', String(port)],
    ...['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
    ...['-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20'],
    ...['-o', `ControlPath=${control}`],
  ];
  const ssh: GuestSsh = (command, extra = {}) =>
    run(['ssh', ...sshOptions, '-o', 'ControlMaster=auto', 'root@127.0.0.1', command], {
      log: o.log,
      tag: 'ssh',
      signal: o.signal,
      input: extra.input,
      okCodes: extra.okCodes,
      timeoutMs: extra.timeoutMs ?? 300_000,
    });
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
  const master = startService(['ssh', ...sshOptions, '-o', 'ControlMaster=yes', '-N', 'root@127.0.0.1'], {
    log: o.log,
    tag: 'ssh-master',
  });
  for (let i = 0; i < 50 && !(await stat(control).catch(() => undefined)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ssh,
    stop: async () => {
      await master.stop('SIGTERM', 5_000);
      await rm(control, { force: true });
    },
  };
}

/** The image's own checks (executables of checksDir), each run inside the guest. */
async function runGuestChecks(
  ssh: GuestSsh,
  checksDir: string | undefined,
  detail: (t: string) => void,
): Promise<CheckResult[]> {
  const checks: CheckResult[] = [];
  if (!checksDir) return checks;
  for (const name of await listChecks(checksDir)) {
    detail(`check ${name}`);
    const c0 = Date.now();
    const script = await readFile(join(checksDir, name), 'utf8');
    // /run and /tmp may be noexec: a private directory under /var/tmp, removed afterwards.
    const r = await ssh(
      `d=$(mktemp -d /var/tmp/osbake-check.XXXXXX) && cat > "$d/check" && chmod 700 "$d/check" && "$d/check"; rc=$?; rm -rf "$d"; exit $rc`,
      { input: script, okCodes: Array.from({ length: 255 }, (_, i) => i + 1) },
    );
    checks.push({
      name,
      passed: r.exitCode === 0,
      duration_s: (Date.now() - c0) / 1000,
      ...(r.exitCode === 0 ? {} : { output: r.tail.slice(-10) }),
    });
  }
  return checks;
}

export type GuestFacts = Pick<
  BootTestResult,
  'state' | 'failed_units' | 'boot_mode' | 'release' | 'release_mismatches' | 'checks'
>;

/** What the booted guest says: systemd's state and failed units, its firmware, its release, its checks. */
export async function inspectGuest(
  ssh: GuestSsh,
  o: BootTestOptions,
  detail: (t: string) => void,
): Promise<GuestFacts> {
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
  return {
    state,
    boot_mode: bootMode,
    failed_units: failedUnits,
    release,
    release_mismatches: releaseMismatches(release, o.expect),
    checks: await runGuestChecks(ssh, o.checksDir, detail),
  };
}

/** Why the guest fails the test, one reason each (pure). */
export function guestFailures(g: GuestFacts, firmware: Firmware): string[] {
  return [
    ...(g.state === 'running'
      ? []
      : [
          `system state ${g.state || 'unknown'}${g.failed_units.length ? ` (failed: ${g.failed_units.join(', ')})` : ''}`,
        ]),
    ...(g.boot_mode === firmware ? [] : [`booted as ${g.boot_mode}, not ${firmware} (inside the guest)`]),
    ...(g.release_mismatches.length ? [`/etc/osbake-release: ${g.release_mismatches.join(', ')}`] : []),
    ...g.checks.filter((c) => !c.passed).map((c) => `check ${c.name} failed`),
  ];
}
