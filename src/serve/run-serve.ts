/** The `osbake serve` verb: pick the directory and data source, serve until SIGINT/SIGTERM. */
import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadProject, type Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { startArtifactServer } from './server.js';

export interface RunServeOptions {
  projectDir: string;
  /** -C was given: a missing osbake.yaml is then an error, not "serve a bare store". */
  explicitProject: boolean;
  root?: string;
  host: string;
  port: string;
  out?: Pick<NodeJS.WriteStream, 'write'>;
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

export async function runServe(o: RunServeOptions): Promise<void> {
  const out = o.out ?? process.stdout;
  const port = parsePort(o.port);
  const project = await findProject(o);
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
  const server = await startArtifactServer({
    storeDir: dir,
    project: sameStore ? project : undefined,
    host: o.host,
    port,
    log: (line) => out.write(`${line}\n`),
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
      throw new UserError(
        'E_LISTEN',
        `cannot listen on ${o.host}:${port}: ${err.code}`,
        err.code === 'EADDRINUSE'
          ? 'pick another --port, or stop what is using it'
          : 'check --host and --port',
      );
    }
    throw err;
  });
  out.write(
    `serving ${server.root} at ${server.url}/ (data: ${sameStore ? 'project manifest.yaml and images/*/manifest.json' : 'store/releases/*.json and store/builds/'}); Ctrl-C stops\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((res) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      res(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  out.write(`${signal}: stopping (requests in flight may finish for 10 s)\n`);
  await server.close();
  out.write('stopped\n');
}
