/**
 * Boot test of a built image (as `osbake test` and after every build): QEMU on a throwaway qcow2
 * overlay with a fresh SSH key through fw_cfg; wait for SSH; `systemctl is-system-running --wait`
 * (failed units listed); /etc/osbake-release must name the build; the image's own checks
 * (executables in images/<name>/tests/) run over SSH; power off. A boot that never answers SSH is
 * retried (TCG boots occasionally hang); the serial log's tail explains a failure.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { run } from '../../exec/run.js';
import { guestFailures, inspectGuest, openGuestSession } from './guest.js';
import { serialTail, startTestVm, waitForSsh } from './test-vm.js';
import type { BootTestOptions, BootTestResult } from './types.js';

export { guestFailures, listChecks } from './guest.js';
export type { BootTestOptions, BootTestResult, CheckResult } from './types.js';

export const BOOT_TEST_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'ssh', 'ssh-keygen'];

export async function bootTest(o: BootTestOptions): Promise<BootTestResult> {
  const t0 = Date.now();
  const detail = o.onDetail ?? (() => undefined);
  await mkdir(o.workDir, { recursive: true });
  const key = join(o.workDir, 'test_key');
  await rm(key, { force: true });
  await rm(`${key}.pub`, { force: true });
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'osbake-boot-test', '-f', key], {
    log: o.log,
    signal: o.signal,
  });
  const attempts = 1 + (o.retries ?? 1);
  let lastReason = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const vm = await startTestVm(o, key, attempt);
    let session: Awaited<ReturnType<typeof openGuestSession>> | undefined;
    const onAbort = () => void vm.stop();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      detail(`booting (${o.firmware}, ${o.accelerator.toUpperCase()}, attempt ${attempt}/${attempts})`);
      const noSsh = await waitForSsh(vm, o);
      if (noSsh) {
        const tail = await serialTail(vm.serial);
        lastReason = noSsh;
        o.log.warn({ attempt, serialTail: tail }, `boot test: ${noSsh}`);
        if (vm.exited() || attempt === attempts) {
          return failed(o, t0, attempt, 0, `${noSsh}; serial console: ${tail.slice(-8).join(' | ')}`);
        }
        continue;
      }
      const bootS = (Date.now() - vm.started) / 1000;
      session = await openGuestSession(o, key, vm.port);
      const guest = await inspectGuest(session.ssh, o, detail);
      // The overlay is thrown away: the VM is stopped (finally below), not shut down.
      detail('stopping the VM');
      const reasons = guestFailures(guest, o.firmware);
      return {
        passed: reasons.length === 0,
        firmware: o.firmware,
        accelerator: o.accelerator,
        duration_s: Math.round((Date.now() - t0) / 100) / 10,
        boot_s: Math.round(bootS * 10) / 10,
        attempts: attempt,
        ...guest,
        ...(reasons.length ? { reason: reasons.join('; ') } : {}),
      };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      await session?.stop();
      await vm.stop();
      await rm(vm.overlay, { force: true });
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
