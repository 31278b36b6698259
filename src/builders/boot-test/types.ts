/** What a boot test is given and what it reports (recorded in manifest.json custom_data.test). */
import type { Logger } from '../../log/logger.js';
import type { Firmware } from './qemu-args.js';

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
