/**
 * The `osbake serve` verb: pick the directory and data source, serve until SIGINT/SIGTERM. With
 * more than one worker (the default, one per core like nginx's `worker_processes auto`) this
 * process is the master: it forks the workers (node:cluster; they share the listening socket),
 * restarts one that dies, and on SIGINT/SIGTERM tells them all to stop gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import { lookup } from 'node:dns/promises';
import { realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { loadProject, type Project } from '../config/project.js';
import { ReportedError, UserError } from '../errors.js';
import { ignoreFurtherSignals, onInterrupt } from '../exec/signals.js';
import type { TextOut } from '../log/progress.js';
import type { NetbootContext } from '../netboot/netboot.js';
import { announceNetboot, netbootContext } from '../netboot/serve-netboot.js';
import { findNginx, freePortOn, type NginxFront, startNginxFront } from './nginx.js';
import { startArtifactServer } from './server.js';

export interface RunServeOptions {
  projectDir: string;
  /** -C was given: a missing osbake.yaml is then an error, not "serve a bare store". */
  explicitProject: boolean;
  root?: string;
  host: string;
  port: string;
  /** Worker processes: "auto" (one per core) or a number; 1 serves from this process. */
  workers?: string;
  /** Who sends the files: "nginx" in front (sendfile), "node" alone, "auto" (nginx if installed). */
  engine?: string;
  /** --netboot [R]: true for the newest release with an installer, or its name. */
  netboot?: string | boolean;
  out?: TextOut;
}

export const ENGINES = ['auto', 'nginx', 'node'] as const;

function parseEngine(text: string): (typeof ENGINES)[number] {
  const e = ENGINES.find((x) => x === text);
  if (!e) {
    throw new UserError(
      'E_USAGE',
      `--engine ${text} is not one of ${ENGINES.join(', ')}`,
      'auto (default): nginx in front when it is installed, else node',
    );
  }
  return e;
}

/** Most workers `--workers` accepts. */
export const MAX_WORKERS = 64;

/** "auto" → one per core (at most 8), "3" → 3, or a UserError (pure apart from the core count). */
export function parseWorkers(text: string, cores = availableParallelism()): number {
  if (text === 'auto') return Math.max(1, Math.min(cores, 8));
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_WORKERS) {
    throw new UserError(
      'E_USAGE',
      `--workers ${text} is not a worker count`,
      `use auto (one per core) or a number from 1 to ${MAX_WORKERS}`,
    );
  }
  return n;
}

/** "8080" → 8080, or a UserError (pure). */
export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) {
    throw new UserError('E_USAGE', `--port ${text} is not a port number`, 'use a number from 0 to 65535');
  }
  return n;
}

async function findProject(o: RunServeOptions): Promise<Project | undefined> {
  try {
    return await loadProject(o.projectDir);
  } catch (err) {
    if (err instanceof UserError && err.code === 'E_NO_PROJECT' && (o.root || !o.explicitProject)) {
      if (!o.root) {
        throw new UserError(
          'E_NO_PROJECT',
          `no osbake.yaml in ${resolve(o.projectDir)} or any parent directory, and no --root given`,
          'run osbake serve inside a project, or give the store directory: osbake serve --root DIR',
        );
      }
      return undefined;
    }
    throw err;
  }
}

/** --host must be an address or a name that resolves, before anything starts. */
export async function checkHost(host: string): Promise<void> {
  try {
    await lookup(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError(
      'E_HOST',
      `--host ${host} does not resolve (${code})`,
      'give an address of this machine (127.0.0.1, 0.0.0.0, ::) or a name that resolves to one',
    );
  }
}

/** The directory to serve (--root, else the project's store), and whether it is that project's store. */
async function servedStore(o: RunServeOptions, project: Project | undefined) {
  const dir = o.root ? resolve(o.root) : (project as Project).storeDir;
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new UserError(
      'E_NO_STORE',
      `${dir} is not a directory`,
      o.root
        ? 'give the store directory (the one holding builds/ and repos/)'
        : 'build an image first (osbake build), or pass --root DIR',
    );
  }
  // Project data only when the served directory is that project's store.
  const sameStore =
    project !== undefined && (await realpath(dir)) === (await realpath(project.storeDir).catch(() => ''));
  const dataNote = sameStore
    ? 'project manifest.yaml and images/*/manifest.json'
    : 'store/releases/*.json and store/builds/';
  return { dir, project: sameStore ? project : undefined, dataNote };
}

/** Why the server could not listen, as a user error (the port's owner, the address). */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
    return new UserError(
      'E_LISTEN',
      `cannot listen on ${host}:${port}: ${err.code}`,
      err.code === 'EADDRINUSE' ? 'pick another --port, or stop what is using it' : 'check --host and --port',
    );
  }
  return err;
}

export async function runServe(o: RunServeOptions): Promise<void> {
  const out = o.out ?? process.stdout;
  const port = parsePort(o.port);
  await checkHost(o.host);
  const { dir, project, dataNote } = await servedStore(o, await findProject(o));
  const workers = parseWorkers(o.workers ?? '1');
  const engine = parseEngine(o.engine ?? 'node');
  const netboot = o.netboot ? await netbootContext(o.netboot, project) : undefined;
  if (cluster.isPrimary && engine !== 'node') {
    const nginx = await findNginx();
    if (nginx) return runWithNginx(o, nginx, { dir, port, workers, dataNote, project, netboot });
    if (engine === 'nginx') {
      throw new UserError(
        'E_TOOL_MISSING',
        'nginx not found (--engine nginx)',
        'install it with: apt-get install nginx-light, or use --engine node',
      );
    }
  }
  if (cluster.isPrimary && workers > 1) return runMaster(o, workers, dataNote, netboot);
  const server = await startArtifactServer({
    storeDir: dir,
    project,
    netboot,
    host: o.host,
    port,
    log: (line) => out.write(`${line}\n`),
  }).catch((err: NodeJS.ErrnoException) => {
    throw listenError(err, o.host, port);
  });
  if (cluster.isWorker) {
    // A worker: the master prints the banner and the shutdown lines; this one serves and logs requests.
    process.send?.({ osbake: 'listening', url: server.url, root: server.root });
    await stopRequested(true);
    // close() stops listening at once; the master hears "closed" after the port is given up.
    const closing = server.close();
    process.send?.({ osbake: 'closed' });
    await closing;
    return;
  }
  out.write(`serving ${server.root} at ${server.url}/ (data: ${dataNote}); Ctrl-C stops\n`);
  const unwatch = netboot ? await announceNetboot(netboot, server.url, o.host, out) : undefined;
  const signal = await stopRequested(false);
  unwatch?.();
  // The line comes once new connections are refused: whoever waits for it may rely on that.
  const closing = server.close();
  out.write(`${signal}: stopping (requests in flight may finish for 10 s)\n`);
  await closing;
  out.write('stopped\n');
}

/**
 * Resolve on SIGINT/SIGTERM (or, in a worker, the master's stop message). A worker then ignores
 * further signals: a terminal's Ctrl-C reaches the master and the workers at once, and the signal
 * may arrive after the master's stop message; without a handler it would kill the worker and cut
 * its downloads. (The master gives workers 15 s, then SIGKILL.) Without workers, a second Ctrl-C
 * stops at once (the default action).
 */
function stopRequested(fromMaster: boolean): Promise<string> {
  return new Promise<string>((res) => {
    const on = (s: string) => {
      off();
      process.off('message', onMessage);
      if (fromMaster) ignoreFurtherSignals();
      res(s);
    };
    const onMessage = (m: unknown) => {
      if ((m as { osbake?: string })?.osbake === 'stop') on('stop');
    };
    const off = onInterrupt(on);
    if (fromMaster) process.on('message', onMessage);
  });
}

interface ListeningMessage {
  osbake: 'listening';
  url: string;
  root: string;
}

/** Fork one worker and resolve with its address once it listens, or reject if it exits first. */
function forkWorker(): { worker: Worker; ready: Promise<ListeningMessage> } {
  const worker = cluster.fork();
  const ready = new Promise<ListeningMessage>((res, rej) => {
    const onMessage = (m: unknown) => {
      if ((m as { osbake?: string })?.osbake !== 'listening') return;
      worker.off('exit', onExit);
      worker.off('message', onMessage);
      res(m as ListeningMessage);
    };
    const onExit = (code: number | null) => {
      worker.off('message', onMessage);
      rej(code ?? 1);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
  });
  return { worker, ready };
}

/**
 * The master: the first worker starts alone (a bad port fails once, with the worker's own error
 * line, and `--port 0` picks the port every worker then shares), then the rest. A worker that dies
 * is replaced, up to 5 times a minute.
 */
async function runMaster(
  o: RunServeOptions,
  count: number,
  dataNote: string,
  netboot: NetbootContext | undefined,
): Promise<void> {
  const out = o.out ?? process.stdout;
  const first = forkWorker();
  // A worker that cannot start (the port is in use) has printed why: exit with its code, silently.
  const address = await first.ready.catch((code: number) => {
    throw new ReportedError(code);
  });
  const rest = Array.from({ length: count - 1 }, () => forkWorker());
  await Promise.all(rest.map((w) => w.ready.catch(() => undefined)));
  let stopping = false;
  const deaths: number[] = [];
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && (deaths[0] ?? now) < now - 60_000) deaths.shift();
    out.write(
      `worker ${worker.process.pid} exited (${signal ?? `code ${code}`})${deaths.length > 5 ? '' : '; starting another'}\n`,
    );
    if (deaths.length <= 5) forkWorker().ready.catch(() => undefined);
  });
  out.write(
    `serving ${address.root} at ${address.url}/ (data: ${dataNote}; ${count} workers); Ctrl-C stops\n`,
  );
  const unwatch = netboot ? await announceNetboot(netboot, address.url, o.host, out) : undefined;
  const signal = await stopRequested(false);
  unwatch?.();
  stopping = true;
  const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  // Each worker is told to stop, stops listening and says "closed" (or exits), then finishes its
  // requests and exits; the workers' own grace is 10 s, past 15 s they are killed.
  const closed: Promise<void>[] = [];
  const exited: Promise<void>[] = [];
  for (const w of alive) {
    if (w.isDead()) continue;
    const exit = new Promise<void>((res) => w.once('exit', () => res()));
    exited.push(exit);
    closed.push(
      Promise.race([
        exit,
        new Promise<void>((res) => {
          w.on('message', (m: unknown) => {
            if ((m as { osbake?: string })?.osbake === 'closed') res();
          });
          setTimeout(res, 5_000).unref();
        }),
      ]),
    );
    if (w.isConnected()) w.send({ osbake: 'stop' }, () => undefined);
    setTimeout(() => w.process.kill('SIGKILL'), 15_000).unref();
  }
  await Promise.all(closed);
  out.write(`${signal}: stopping (requests in flight may finish for 10 s)\n`);
  await Promise.all(exited);
  out.write('stopped\n');
}

/**
 * nginx in front (sendfile for the files), osbake's server behind it on a loopback port for
 * everything else (see nginx.ts). One process tree: this process, nginx's master and its workers.
 */
async function runWithNginx(
  o: RunServeOptions,
  nginx: string,
  c: {
    dir: string;
    port: number;
    workers: number;
    dataNote: string;
    project?: Project;
    netboot?: NetbootContext;
  },
): Promise<void> {
  const out = o.out ?? process.stdout;
  const backend = await startArtifactServer({
    storeDir: c.dir,
    project: c.project,
    host: '127.0.0.1',
    port: 0,
    accessLog: false,
    behindProxy: true,
    netboot: c.netboot,
    log: (line) => out.write(`${line}\n`),
  });
  let front: NginxFront;
  try {
    const port = c.port === 0 ? await freePortOn(o.host) : c.port;
    front = await startNginxFront(
      nginx,
      {
        root: backend.root,
        host: o.host,
        port,
        backendPort: backend.port,
        workers: c.workers,
        runAsRoot: process.getuid?.() === 0,
        ...(c.netboot
          ? {
              netboot: {
                release: c.netboot.release.release,
                dir: c.netboot.release.dir,
                files: c.netboot.release.files,
              },
            }
          : {}),
      },
      (line) => process.stderr.write(`${line}\n`),
      (line) => out.write(`${line}\n`),
    );
  } catch (err) {
    await backend.close();
    throw err;
  }
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  out.write(
    `serving ${backend.root} at http://${host}:${front.port}/ (data: ${c.dataNote}; nginx ${front.version} sends the files, ${c.workers} workers); Ctrl-C stops\n`,
  );
  const unwatch = c.netboot
    ? await announceNetboot(c.netboot, `http://${host}:${front.port}`, o.host, out)
    : undefined;
  const died = front.exited.then((code) => `nginx exited (code ${code})`);
  const signal = await Promise.race([stopRequested(false), died]);
  unwatch?.();
  if (signal.startsWith('nginx exited')) {
    await front.stop();
    await backend.close();
    throw new UserError(
      'E_NGINX',
      `${signal} while serving`,
      'see its error above; --engine node serves without it',
    );
  }
  await front.quit();
  out.write(`${signal}: stopping (requests in flight may finish for 10 s)\n`);
  await front.stop(10_000);
  await backend.close();
  out.write('stopped\n');
}
