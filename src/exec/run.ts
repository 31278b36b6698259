/**
 * The only module that starts child processes. argv arrays only (never a shell string), stdin
 * closed unless interactive, every output line streamed into the log, exit codes checked, and a
 * missing tool turned into one line that names the Debian package to install.
 */
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { InterruptedError, ProcessError, UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Which Debian package provides each tool osbake runs. */
export const DEBIAN_PACKAGE_FOR: Readonly<Record<string, string>> = {
  packer: 'packer',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  mmdebstrap: 'mmdebstrap',
  'ansible-playbook': 'ansible',
  extlinux: 'extlinux',
  sfdisk: 'fdisk',
  losetup: 'mount',
  partx: 'util-linux',
  blkid: 'util-linux',
  lsblk: 'util-linux',
  blockdev: 'util-linux',
  fallocate: 'util-linux',
  fstrim: 'util-linux',
  systemctl: 'systemd',
  filefrag: 'e2fsprogs',
  bmaptool: 'bmap-tools',
  mount: 'mount',
  umount: 'mount',
  'mkfs.ext4': 'e2fsprogs',
  'ssh-keygen': 'openssh-client',
  'ssh-keyscan': 'openssh-client',
  ssh: 'openssh-client',
  git: 'git',
  zstd: 'zstd',
  rsync: 'rsync',
  tar: 'tar',
  dd: 'coreutils',
  dnf: 'dnf',
  rpm: 'rpm',
  rpmdb: 'rpm',
  createrepo_c: 'createrepo-c',
  modifyrepo_c: 'createrepo-c',
  xz: 'xz-utils',
  bzip2: 'bzip2',
  virsh: 'libvirt-clients',
  mformat: 'mtools',
  mlabel: 'mtools',
  minfo: 'mtools',
  mcopy: 'mtools',
  mmd: 'mtools',
  'grub-mkimage': 'grub-common',
  '/usr/lib/grub/i386-pc/grub-bios-setup': 'grub-pc-bin',
  'mkfs.vfat': 'dosfstools',
  cpio: 'cpio',
  mknod: 'coreutils',
  mkfifo: 'coreutils',
  chroot: 'coreutils',
  find: 'findutils',
  debugfs: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  dnsmasq: 'dnsmasq-base',
};

export interface RunOptions {
  log: Logger;
  /** Tag for log lines (defaults to the program name). */
  tag?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Called with each output line (stdout and stderr), e.g. to drive a progress display. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Aborting sends `cancelSignal` to the child, then (after `cancelGroupAfterMs`) to its whole
   * process group as a terminal's Ctrl-C would (Packer's provisioners, e.g. ansible-playbook, do not
   * stop otherwise), then SIGKILL to the group after `cancelGraceMs`; and waits for it to exit.
   */
  signal?: AbortSignal;
  cancelSignal?: NodeJS.Signals;
  /** When the cancel signal also goes to the child's process group (default 5 s). */
  cancelGroupAfterMs?: number;
  /** How long a cancelled child may take to clean up before its process group is killed. */
  cancelGraceMs?: number;
  /** Text written to the child's stdin (instead of closing it). */
  input?: string;
  /** Keep the terminal's stdin attached (packer -debug asks questions). */
  interactive?: boolean;
  /** Also copy the child's raw output here as it arrives (interactive tools' prompts). */
  passthrough?: NodeJS.WritableStream;
  /** Echo a copy-pasteable command line to stderr (--debug). */
  echo?: boolean;
  /** Exit codes that are not failures. */
  okCodes?: number[];
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
  /** Output lines kept for error messages. */
  tailLines?: number;
  /**
   * The child gets SIGTERM when osbake dies, even by SIGKILL (setpriv --pdeathsig), so no orphan
   * keeps running (an rsync upload, a server).
   */
  dieWithParent?: boolean;
}

/** util-linux's setpriv, where it is (always on Debian); without it dieWithParent does nothing. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export interface RunResult {
  exitCode: number;
  stdout: string;
  tail: string[];
}

/** Quote an argv for a POSIX shell so that --debug output can be pasted. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

export function missingToolError(tool: string): UserError {
  const pkg = DEBIAN_PACKAGE_FOR[tool];
  return new UserError(
    'E_TOOL_MISSING',
    `${tool} not found`,
    pkg ? `install it with: apt-get install ${pkg}` : `install ${tool} and make sure it is on PATH`,
  );
}

function interruption(signal: AbortSignal | undefined): InterruptedError {
  return signal?.reason instanceof InterruptedError ? signal.reason : new InterruptedError('SIGINT');
}

function signalProcess(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * On abort: the cancel signal to the child, later to its process group, finally SIGKILL to the
 * group. Returns a function that stops the timers once the child has exited.
 */
function onAbortCancel(pid: number | undefined, opts: RunOptions): () => void {
  const { signal } = opts;
  if (!signal || pid === undefined) return () => {};
  const group = opts.interactive ? pid : -pid;
  const sig = opts.cancelSignal ?? 'SIGTERM';
  const timers: NodeJS.Timeout[] = [];
  const cancel = () => {
    opts.log.warn({ pid, signal: sig }, 'cancelling');
    signalProcess(pid, sig);
    timers.push(setTimeout(() => signalProcess(group, sig), opts.cancelGroupAfterMs ?? 5_000));
    timers.push(setTimeout(() => signalProcess(group, 'SIGKILL'), opts.cancelGraceMs ?? 10_000));
  };
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
  return () => {
    signal.removeEventListener('abort', cancel);
    for (const t of timers) clearTimeout(t);
  };
}

/** What run() and runStreaming() do before spawning: check argv and abort, log (and echo) the command. */
function startRun(argv: readonly string[], opts: RunOptions) {
  if (!argv[0]) throw new Error('run: empty argv');
  const tag = opts.tag ?? argv[0];
  const [file, ...args] = opts.dieWithParent && SETPRIV ? [SETPRIV, '--pdeathsig', 'TERM', ...argv] : argv;
  if (!file) throw new Error('run: empty argv');
  if (opts.signal?.aborted) throw interruption(opts.signal);
  opts.log.info({ cmd: shellQuote(argv), cwd: opts.cwd }, `run ${tag}`);
  if (opts.echo) process.stderr.write(`+ ${shellQuote(argv)}\n`);
  return { file, args, tag, tailMax: opts.tailLines ?? 40 };
}

/** Run argv, stream its output into the log, and throw ProcessError unless it exits 0 (or okCodes). */
export async function run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const { file, args, tag, tailMax } = startRun(argv, opts);

  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    ...(opts.input !== undefined
      ? { input: opts.input }
      : { stdin: opts.interactive ? 'inherit' : 'ignore' }),
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    // Own process group: a terminal Ctrl-C reaches osbake only, which forwards it (see cancel()).
    detached: !opts.interactive,
    timeout: opts.timeoutMs,
  });
  const stopCancel = onAbortCancel(child.pid, opts);

  const tail: string[] = [];
  const out: string[] = [];
  const pump = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') =>
    new Promise<void>((resolve) => {
      if (!stream) return resolve();
      if (opts.passthrough) {
        const to = opts.passthrough;
        stream.on('data', (chunk: Buffer) => to.write(chunk));
      }
      const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
      rl.on('line', (line) => {
        if (name === 'stdout') out.push(line);
        tail.push(line);
        if (tail.length > tailMax) tail.shift();
        opts.log.info({ src: tag, stream: name }, line);
        opts.onLine?.(line, name);
      });
      rl.on('close', () => resolve());
    });

  const [result] = await Promise.all([child, pump(child.stdout, 'stdout'), pump(child.stderr, 'stderr')]);
  stopCancel();
  return checkResult(argv, opts, result, tail, out.join('\n'));
}

/** Run and return stdout, trimmed. */
export async function capture(argv: readonly string[], opts: RunOptions): Promise<string> {
  return (await run(argv, opts)).stdout.trim();
}

/** A finished streaming child as a RunResult, or the error that says what went wrong (as run() does). */
function checkResult(
  argv: readonly string[],
  opts: RunOptions,
  result: Awaited<ReturnType<typeof execa>>,
  tail: string[],
  stdout: string,
): RunResult {
  const file = argv[0] ?? '';
  const tag = opts.tag ?? file;
  const code = (result as { code?: string }).code;
  if (code === 'ENOENT' || result.exitCode === 127) throw missingToolError(file);
  if (result.isCanceled || opts.signal?.aborted) {
    opts.log.warn({ src: tag }, 'cancelled');
    throw interruption(opts.signal);
  }
  const exitCode = result.exitCode ?? -1;
  opts.log.info({ src: tag, exitCode, signal: result.signal }, `exit ${tag}`);
  if (result.timedOut) {
    throw new ProcessError([...argv], undefined, tail, `timeout after ${opts.timeoutMs} ms`);
  }
  if (exitCode !== 0 && !(opts.okCodes ?? []).includes(exitCode)) {
    throw new ProcessError([...argv], result.exitCode, tail, result.signal ?? undefined);
  }
  return { exitCode, stdout, tail };
}

export interface StreamingRun {
  /** The child's stdout as raw bytes (not logged); read it to the end, or call stop(). */
  stdout: NodeJS.ReadableStream;
  /** Resolves when the child has exited 0 (stderr lines are logged and kept for errors). */
  done: Promise<RunResult>;
  /** Kill the child (the reader gave up) and wait for it; never throws. */
  stop(): Promise<void>;
}

/**
 * Run argv and hand its stdout over as a byte stream (a decompressor feeding a writer). Same rules
 * as run(): argv array, stdin closed, own process group, stderr into the log, exit code checked.
 */
export function runStreaming(argv: readonly string[], opts: RunOptions): StreamingRun {
  const { file, args, tag, tailMax } = startRun(argv, opts);
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    encoding: 'buffer',
    detached: true,
    timeout: opts.timeoutMs,
  });
  // Cancelled as run() does: the signal to the child, then its group, then SIGKILL to the group.
  const stopCancel = onAbortCancel(child.pid, opts);
  const tail: string[] = [];
  const stderrDone = new Promise<void>((resolve) => {
    const rl = createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => {
      tail.push(line);
      if (tail.length > tailMax) tail.shift();
      opts.log.info({ src: tag, stream: 'stderr' }, line);
      opts.onLine?.(line, 'stderr');
    });
    rl.on('close', () => resolve());
  });
  let stopped = false;
  const done = Promise.all([child, stderrDone]).then(([result]) => {
    stopCancel();
    if (stopped) return { exitCode: result.exitCode ?? -1, stdout: '', tail };
    return checkResult(argv, opts, result, tail, '');
  });
  return {
    stdout: child.stdout,
    done,
    async stop() {
      stopped = true;
      child.kill('SIGTERM');
      await done.catch(() => undefined);
    },
  };
}

export interface Service {
  pid: number | undefined;
  /** Resolves once the service has exited: its exit code (null if a signal ended it). Never rejects. */
  exited: Promise<number | null>;
  /** Send a signal to the service (its main process). */
  kill(signal: NodeJS.Signals): void;
  /**
   * Stop it: `first` (the program's graceful stop, e.g. SIGQUIT for nginx; undefined if already
   * sent), SIGTERM after graceMs, SIGKILL to its process group 5 s later. Resolves once it has exited.
   */
  stop(first: NodeJS.Signals | undefined, graceMs: number): Promise<void>;
}

/**
 * Start a long-running program (a server osbake fronts): argv array, stdin and stdout closed,
 * stderr lines to the log and to onStderrLine, its own process group (a terminal's Ctrl-C reaches
 * osbake only, which then stops the service its way). A missing program exits like any other
 * failure: `exited` resolves with 127 (ENOENT) and the log says why.
 */
export function startService(
  argv: readonly string[],
  opts: Pick<RunOptions, 'log' | 'tag' | 'cwd' | 'env' | 'echo' | 'dieWithParent'> & {
    onStderrLine?: (line: string) => void;
  },
): Service {
  const { file, args, tag } = startRun(argv, opts);
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    detached: true,
  });
  const rl = createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY });
  rl.on('line', (line) => {
    opts.log.info({ src: tag, stream: 'stderr' }, line);
    opts.onStderrLine?.(line);
  });
  const exited = child.then((r) => {
    const code = (r as { code?: string }).code === 'ENOENT' ? 127 : (r.exitCode ?? null);
    opts.log.info({ src: tag, exitCode: code, signal: r.signal }, `exit ${tag}`);
    return code;
  });
  const pid = child.pid;
  return {
    pid,
    exited,
    kill(signal) {
      if (pid !== undefined) signalProcess(pid, signal);
    },
    async stop(first, graceMs) {
      if (pid === undefined) return;
      if (first) signalProcess(pid, first);
      const term = setTimeout(() => signalProcess(pid, 'SIGTERM'), graceMs);
      const kill = setTimeout(() => signalProcess(-pid, 'SIGKILL'), graceMs + 5_000);
      await exited;
      clearTimeout(term);
      clearTimeout(kill);
    },
  };
}
