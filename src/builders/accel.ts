/**
 * Accelerator choice: KVM when a short probe shows that it really runs a guest, else TCG.
 * /dev/kvm can exist while guests hang or die ("KVM internal error"), so existence is not enough.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessError, UserError } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export type Accelerator = 'kvm' | 'tcg';

/** --accelerator's value (undefined: not given), or a usage error naming the choices. */
export function parseAccelerator(text: string | undefined): 'auto' | Accelerator | undefined {
  if (text === undefined || text === 'auto' || text === 'kvm' || text === 'tcg') return text;
  throw new UserError(
    'E_USAGE',
    `--accelerator ${text} is not one of auto, kvm, tcg`,
    'use --accelerator tcg or kvm or auto',
  );
}

export interface KvmFacts {
  /** /dev/kvm exists and is read-write for us. */
  devKvm: boolean;
  /** The CPU advertises vmx or svm. */
  cpuVirt: boolean;
  /** A tiny guest ran to completion under KVM within the timeout. */
  guestRan: boolean | undefined;
}

export interface AcceleratorChoice {
  accelerator: Accelerator;
  reason: string;
}

/** Pure decision from what was probed and what the user asked for. */
export function chooseAccelerator(requested: 'auto' | Accelerator, facts: KvmFacts): AcceleratorChoice {
  if (requested === 'tcg') return { accelerator: 'tcg', reason: 'TCG requested in configuration' };
  const why = !facts.devKvm
    ? '/dev/kvm is missing or not writable'
    : !facts.cpuVirt
      ? 'the CPU exposes no vmx/svm flag'
      : facts.guestRan === false
        ? 'a probe guest did not run under KVM'
        : undefined;
  if (!why) return { accelerator: 'kvm', reason: 'KVM probe guest ran' };
  if (requested === 'kvm')
    return { accelerator: 'kvm', reason: `KVM forced by configuration although ${why}` };
  return { accelerator: 'tcg', reason: `${why}: using TCG software emulation (slow)` };
}

/** A boot sector that writes 0x31 to isa-debug-exit: QEMU exits with (0x31 << 1) | 1 = 99. */
export function probeBootSector(): Buffer {
  const code = [0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]; // mov al,0x31; out 0xf4,al; hlt; jmp $-1
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export const PROBE_EXIT_CODE = 99;

export async function probeKvm(timeoutMs: number, log: Logger): Promise<KvmFacts> {
  const devKvm = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const cpuVirt = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
  if (!devKvm || !cpuVirt) return { devKvm, cpuVirt, guestRan: undefined };
  const dir = await mkdtemp(join(tmpdir(), 'osbake-kvm-'));
  try {
    const disk = join(dir, 'probe.img');
    await writeFile(disk, probeBootSector());
    const res = await run(
      [
        'qemu-system-x86_64',
        '-accel',
        'kvm',
        '-display',
        'none',
        '-nodefaults',
        '-no-reboot',
        '-m',
        '16',
        '-device',
        'isa-debug-exit,iobase=0xf4,iosize=0x04',
        '-drive',
        `file=${disk},format=raw,if=ide`,
      ],
      { log, tag: 'kvm-probe', timeoutMs, okCodes: [PROBE_EXIT_CODE] },
    ).catch((err: unknown) => {
      if (err instanceof ProcessError) return undefined;
      throw err;
    });
    const ran = res?.exitCode === PROBE_EXIT_CODE && !res.tail.some((l) => /KVM internal error/.test(l));
    return { devKvm, cpuVirt, guestRan: ran };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function selectAccelerator(
  requested: 'auto' | Accelerator,
  timeoutMs: number,
  log: Logger,
): Promise<AcceleratorChoice> {
  if (requested === 'tcg')
    return chooseAccelerator('tcg', { devKvm: false, cpuVirt: false, guestRan: undefined });
  const facts = await probeKvm(timeoutMs, log);
  log.info({ facts }, 'kvm probe');
  return chooseAccelerator(requested, facts);
}
