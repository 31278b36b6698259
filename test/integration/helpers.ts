/** Helpers for integration tests: throwaway projects, the real CLI, ports, and what a test left (mounts, loops, VMs). */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO = resolve(__dirname, '../..');
/** The CLI under test: this checkout's, or another build's with OSBAKE_TEST_CLI (no compile then). */
export const CLI = process.env.OSBAKE_TEST_CLI ?? join(REPO, 'bin/osbake.js');
/** Vanilla disks are cached here across test runs (as they are for users in .osbake/). */
export const SHARED_WORK_DIR = join(REPO, '.osbake');
/** Where the CLI's per-run logs (burn, publish) go during tests. */
export const TEST_LOG_DIR = join(tmpdir(), 'osbake-test-logs');

export interface TempProject {
  dir: string;
  /** The project's workDir: SHARED_WORK_DIR, or its own (ownWorkDir) with the shared cache linked. */
  workDir: string;
  cleanup(): Promise<void>;
}

/**
 * A workDir of one project's own whose cache/ is the shared one (a symlink, as `osbake rebuild`
 * gives its worktree): its work directories, mounts, loop devices and chroot processes are its
 * alone to count while another test file builds beside it.
 */
async function ownWorkDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'osbake-work-'));
  mkdirSync(join(SHARED_WORK_DIR, 'cache'), { recursive: true });
  await symlink(join(SHARED_WORK_DIR, 'cache'), join(dir, 'cache'));
  return dir;
}

/**
 * A git repository holding osbake.yaml and images/debian12-base, committed on branch main.
 * ownWorkDir: see ownWorkDir() (for tests that count what is left in the work directory).
 */
export async function makeProject(
  opts: {
    imageYaml?: string;
    extraConfig?: string;
    files?: Record<string, string>;
    /** Files written with mode 0755 (an image's checks under tests/). */
    executables?: Record<string, string>;
    ownWorkDir?: boolean;
  } = {},
): Promise<TempProject> {
  const dir = await mkdtemp(join(tmpdir(), 'osbake-it-'));
  const workDir = opts.ownWorkDir ? await ownWorkDir() : SHARED_WORK_DIR;
  await cp(join(REPO, 'images/debian12-base'), join(dir, 'images/debian12-base'), {
    recursive: true,
    filter: (p) => !p.endsWith('manifest.json'),
  });
  if (opts.imageYaml) await writeFile(join(dir, 'images/debian12-base/image.yaml'), opts.imageYaml);
  for (const [rel, content] of Object.entries(opts.files ?? {})) await writeFile(join(dir, rel), content);
  for (const [rel, content] of Object.entries(opts.executables ?? {}))
    await writeFile(join(dir, rel), content, { mode: 0o755 });
  const base = await readFile(join(REPO, 'osbake.yaml'), 'utf8');
  await writeFile(
    join(dir, 'osbake.yaml'),
    `${base
      .replace(/^workDir:.*$/m, `workDir: ${workDir}`)
      // A TCG boot that hangs (FACTS) is retried after 5 minutes without SSH, not 10: the Packer
      // builds of the tests reach SSH in 1-2 minutes on an idle machine.
      .replace(/^( +sshTimeout:) *10m/m, '$1 5m')}\n${opts.extraConfig ?? ''}`,
  );
  await writeFile(join(dir, '.gitignore'), 'store/\nout/\n');
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'test@osbake.invalid');
  git('config', 'user.name', 'osbake test');
  git('add', '-A');
  git('commit', '-q', '-m', 'image definitions');
  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true });
    // Never through a mount a failed test left (a chroot's /dev, /proc): then the directory stays.
    if (workDir !== SHARED_WORK_DIR && mountsUnder(workDir).length === 0)
      await rm(workDir, { recursive: true, force: true });
  };
  return { dir, workDir, cleanup };
}

/**
 * A command run without blocking the test worker (its stdout): a synchronous call of a minute or
 * more blocks vitest's RPC and fails the run ("Timeout calling onTaskUpdate") though every test passed.
 */
export async function cmd(
  file: string,
  args: readonly string[],
  o: { timeoutMs?: number } = {},
): Promise<string> {
  const { stdout } = await execFileAsync(file, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    ...(o.timeoutMs ? { timeout: o.timeoutMs } : {}),
  });
  return stdout;
}

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Start the real CLI; `until` resolves when the combined output matches. `group`: the CLI leads
 * its own process group, as a command started from a shell does (send a terminal's Ctrl-C with
 * `process.kill(-child.pid, 'SIGINT')`).
 */
export function startCli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  o: { group?: boolean } = {},
) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    // burn and publish log to a file per run: keep the tests' logs out of the home directory.
    env: { ...process.env, CI: 'true', OSBAKE_LOG_DIR: TEST_LOG_DIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: o.group ?? false,
  });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.re.test(stdout + stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    check();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    check();
  });
  const done = new Promise<CliRun>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    /** Everything printed so far (stdout, then stderr). */
    output: () => `${stdout}${stderr}`,
    /** Wait for output matching re; fails at once when the process ends first (no wait for nothing). */
    until: (re: RegExp, timeoutMs: number) =>
      new Promise<void>((res, rej) => {
        const t = setTimeout(
          () => rej(new Error(`timeout waiting for ${re}\n${stdout}\n${stderr}`)),
          timeoutMs,
        );
        const waiter = {
          re,
          resolve: () => {
            clearTimeout(t);
            res();
          },
        };
        waiters.push(waiter);
        check();
        void done.then((r) => {
          if (!waiters.includes(waiter)) return;
          waiters.splice(waiters.indexOf(waiter), 1);
          clearTimeout(t);
          rej(new Error(`exited (${r.code ?? r.signal}) before ${re}\n${stdout}\n${stderr}`));
        });
      }),
  };
}

export async function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliRun> {
  return startCli(args, cwd, env).done;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

/** Resolve when the port answers with an SSH banner (hostfwd accepts TCP before sshd listens). */
export async function waitForSshBanner(
  port: number,
  timeoutMs: number,
  host = '127.0.0.1',
): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, host);
      let buf = '';
      const t = setTimeout(() => {
        s.destroy();
        res(false);
      }, 3000);
      s.on('data', (d) => {
        buf += d.toString();
        if (buf.startsWith('SSH-')) {
          clearTimeout(t);
          s.destroy();
          res(true);
        }
      });
      s.on('error', () => {
        clearTimeout(t);
        res(false);
      });
      s.on('close', () => {
        clearTimeout(t);
        res(buf.startsWith('SSH-'));
      });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** QEMU processes whose command line mentions `needle`. */
export function qemuProcessesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const argv0 = cmd.split('\0')[0] ?? '';
      if (/(^|\/)qemu-system-[^/]*$/.test(argv0) && cmd.includes(needle)) pids.push(Number(pid));
    } catch {
      // gone
    }
  }
  return pids;
}

export function loopDevicesBacking(needle: string): string[] {
  const out = execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((l) => l.includes(needle));
}

export function mountsUnder(needle: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(needle));
}

/**
 * Debian's signed network boot chain for tests that make a stick by hand: shim-signed and
 * grub-efi-amd64-signed from the mirror (apt-get download, dpkg-deb -x; nothing installed on this
 * machine), cached in the shared work dir. The same files the installer OS takes them from.
 */
export function debianSignedNetChain(): { shim: string; grubNet: string } {
  const dir = join(SHARED_WORK_DIR, 'cache', 'test-signed-chain');
  const shim = join(dir, 'root/usr/lib/shim/shimx64.efi.signed');
  const grubNet = join(dir, 'root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed');
  if (!existsSync(shim) || !existsSync(grubNet)) {
    // Made aside and renamed: test files running at once never see half of it.
    const tmp = `${dir}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, 'debs'), { recursive: true });
    execFileSync('apt-get', ['download', '-q', 'shim-signed', 'grub-efi-amd64-signed'], {
      cwd: join(tmp, 'debs'),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    for (const deb of readdirSync(join(tmp, 'debs')).filter((f) => f.endsWith('.deb'))) {
      execFileSync('dpkg-deb', ['-x', join(tmp, 'debs', deb), join(tmp, 'root')]);
    }
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { shim, grubNet };
}
