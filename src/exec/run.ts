/**
 * The only module that starts child processes. argv arrays only (never a shell string), stdin
 * closed unless interactive, every output line streamed into the log, exit codes checked, and a
 * missing tool turned into one line that names the Debian package to install.
 */
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
  bmaptool: 'bmap-tools',
  mformat: 'mtools',
  mcopy: 'mtools',
  mmd: 'mtools',
  'grub-mkstandalone': 'grub-efi-amd64-bin grub-common',
  cpio: 'cpio',
  mknod: 'coreutils',
  chroot: 'coreutils',
  find: 'findutils',
};

export interface RunOptions {
  log: Logger;
  /** Tag for log lines (defaults to the program name). */
  tag?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Called with each output line (stdout and stderr), e.g. to drive a progress display. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Aborting sends `cancelSignal` to the child and waits for it to exit. */
  signal?: AbortSignal;
  cancelSignal?: NodeJS.Signals;
  /** How long a cancelled child may take to clean up before it is killed. */
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
}

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

/** Run argv, stream its output into the log, and throw ProcessError unless it exits 0 (or okCodes). */
export async function run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  const tag = opts.tag ?? file;
  const tailMax = opts.tailLines ?? 40;
  if (opts.signal?.aborted) throw interruption(opts.signal);
  opts.log.info({ cmd: shellQuote(argv), cwd: opts.cwd }, `run ${tag}`);
  if (opts.echo) process.stderr.write(`+ ${shellQuote(argv)}\n`);

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
    // Own process group: a terminal Ctrl-C reaches osbake only, which forwards it exactly once.
    detached: !opts.interactive,
    cancelSignal: opts.signal,
    killSignal: opts.cancelSignal ?? 'SIGTERM',
    forceKillAfterDelay: opts.cancelGraceMs ?? 10_000,
    timeout: opts.timeoutMs,
  });

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
  const code = (result as { code?: string }).code;
  if (code === 'ENOENT' || result.exitCode === 127) throw missingToolError(file);
  if (result.isCanceled) {
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
  return { exitCode, stdout: out.join('\n'), tail };
}

/** Run and return stdout, trimmed. */
export async function capture(argv: readonly string[], opts: RunOptions): Promise<string> {
  return (await run(argv, opts)).stdout.trim();
}
