/** The boot test's VM: QEMU on a throwaway overlay, SSH forwarded to a free port, the serial log kept. */
import { copyFile, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { run, startService } from '../../exec/run.js';
import { consoleTailLines } from '../../log/console-text.js';
import { buildQemuArgs, OVMF } from './qemu-args.js';
import type { BootTestOptions } from './types.js';

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

export async function serialTail(file: string, n = 25): Promise<string[]> {
  return consoleTailLines(await readFile(file, 'utf8').catch(() => ''), n);
}

/** A running test VM: QEMU on a fresh overlay of the disk, SSH forwarded to `port`. */
export interface TestVm {
  port: number;
  serial: string;
  overlay: string;
  started: number;
  exited: () => boolean;
  stop: () => Promise<void>;
}

/** Start attempt N's VM: a new overlay, a fresh variable store (UEFI), the key through fw_cfg. */
export async function startTestVm(o: BootTestOptions, key: string, attempt: number): Promise<TestVm> {
  const overlay = join(o.workDir, 'overlay.qcow2');
  await rm(overlay, { force: true });
  await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', o.disk, '-F', 'qcow2', overlay], {
    log: o.log,
    signal: o.signal,
  });
  let varsFile: string | undefined;
  if (o.firmware !== 'bios') {
    varsFile = join(o.workDir, 'OVMF_VARS.fd');
    await copyFile(OVMF[o.firmware].vars, varsFile);
  }
  const port = await freePort();
  const serial = join(o.workDir, `serial-${attempt}.log`);
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
  const vm = startService(argv, { log: o.log, tag: 'qemu' });
  let exited = false;
  void vm.exited.then(() => {
    exited = true;
  });
  return {
    port,
    serial,
    overlay,
    started,
    exited: () => exited,
    stop: () => vm.stop('SIGTERM', 5_000),
  };
}

/** Wait for the VM's SSH banner; the reason when it never came (QEMU exited, or the timeout). */
export async function waitForSsh(vm: TestVm, o: BootTestOptions): Promise<string | undefined> {
  const timeoutMs = o.sshTimeoutMs ?? 300_000;
  while (!vm.exited() && Date.now() - vm.started < timeoutMs) {
    if (o.signal?.aborted) throw o.signal.reason;
    if (await sshBanner(vm.port)) return undefined;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return vm.exited()
    ? 'QEMU exited before SSH answered'
    : `no SSH answer within ${Math.round(timeoutMs / 1000)} s`;
}
