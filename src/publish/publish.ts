/**
 * osbake publish: copy a build's or a release's files from the store to a remote mirror with rsync
 * over SSH. Host keys are always checked (StrictHostKeyChecking=yes against a known_hosts file).
 * Each file goes up under a hidden temporary name, resumable (--partial-dir), its SHA-256 is
 * checked on the mirror, and only then is it renamed to its final name. Files already on the
 * mirror with the right SHA-256 are skipped.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { fileSize, sha256File } from '../artifacts/checksum.js';
import { buildFileOf } from '../config/builds.js';
import type { Project } from '../config/project.js';
import { parseSshUrl } from '../config/ssh-target.js';
import { ProcessError, UserError, withContext } from '../errors.js';
import { run } from '../exec/run.js';
import { createNullLogger, type Logger } from '../log/logger.js';
import type { ProgressSink, TextOut } from '../log/progress.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { readImageBuilds } from '../release/image-builds.js';
import { resolveBuild } from '../release/packages.js';
import {
  orderFiles,
  parseRsyncProgress,
  parseRsyncStats,
  parseSha256sum,
  partName,
  rsyncArgv,
  type SshSettings,
  sshArgv,
} from './publish-plan.js';

export interface PublishedFile {
  rel: string;
  size: number;
  sha256: string;
  status: 'uploaded' | 'resumed' | 'present';
  /** Bytes rsync really sent as file data (literal data), when uploaded. */
  literal?: number;
}

export interface PublishFilesOptions {
  ssh: SshSettings;
  storeDir: string;
  /** Store-relative paths, in upload order. */
  files: string[];
  /** SHA-256 the files must have (e.g. as a release records them); others are computed. */
  expected?: ReadonlyMap<string, string>;
  bwlimitKiB?: number;
  log?: Logger;
  signal?: AbortSignal;
  progress?: ProgressSink;
  out?: TextOut;
}

/** ssh's own failures (host key, authentication, connection) as one line with a hint. */
export function explainSshFailure(err: unknown, s: SshSettings): unknown {
  if (!(err instanceof ProcessError) || err.exitCode !== 255) return err;
  const text = err.outputTail.join('\n');
  const host = s.target.host;
  if (
    /host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(text)
  ) {
    return new UserError(
      'E_HOST_KEY',
      `the host key of ${host} is not in ${s.knownHosts} or does not match it`,
      `check the mirror's key fingerprint, then add it: ssh-keyscan ${s.target.port ? `-p ${s.target.port} ` : ''}${host} >> ${s.knownHosts}`,
    );
  }
  if (/Permission denied/i.test(text)) {
    return new UserError(
      'E_SSH_AUTH',
      `${s.target.user ?? 'the user'}@${host} refused the SSH key`,
      "give the key with --identity or publish.identityFile, and add its .pub to the mirror user's authorized_keys",
    );
  }
  return new UserError(
    'E_SSH',
    `cannot reach ${host} over SSH: ${err.outputTail.at(-1) ?? 'exit 255'}`,
    'check the host, port and network',
  );
}

type MirrorSsh = (argv: string[], okCodes?: number[]) => ReturnType<typeof run>;
type LocalFiles = Map<string, { size: number; sha256: string }>;

/** Local checks first: every file exists and has the SHA-256 it must have. */
async function checkLocalFiles(o: PublishFilesOptions, progress: ProgressSink): Promise<LocalFiles> {
  const local: LocalFiles = new Map();
  for (const rel of o.files) {
    const file = join(o.storeDir, rel);
    const size = await fileSize(file).catch(() => undefined);
    if (size === undefined) {
      throw new UserError(
        'E_STORE',
        `${file} does not exist`,
        'build or restore it first (osbake verify checks a release)',
      );
    }
    progress.start(`sha256 ${rel}`, size);
    const sha256 = await sha256File(file, (n) => progress.add(n)).finally(() => progress.end());
    const want = o.expected?.get(rel);
    if (want && want !== sha256) {
      throw new UserError(
        'E_STORE',
        `${file} has sha256 ${sha256}, but ${want} is recorded`,
        'the store copy is damaged or was replaced: restore it, or rerun osbake release --force',
      );
    }
    local.set(rel, { size, sha256 });
  }
  return local;
}

/** The files the mirror holds already, the same: sizes first, then SHA-256 of those of the right size. */
async function presentOnMirror(
  o: PublishFilesOptions,
  ssh: MirrorSsh,
  local: LocalFiles,
  remote: (rel: string) => string,
): Promise<Set<string>> {
  const dirs = [...new Set(o.files.map((r) => posix.dirname(remote(r))))];
  await ssh(['mkdir', '-p', '--', ...dirs]);
  const stats = await ssh(['stat', '-c', '%s %n', '--', ...o.files.map(remote)], [0, 1]);
  const sameSize = stats.stdout
    .split('\n')
    .map((l) => /^(\d+) (.+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .filter((m) => o.files.some((r) => remote(r) === m[2] && local.get(r)?.size === Number(m[1])))
    .map((m) => m[2] as string);
  const present = new Set<string>();
  if (sameSize.length > 0) {
    const sums = parseSha256sum((await ssh(['sha256sum', '--', ...sameSize], [0, 1])).stdout);
    for (const r of o.files) if (sums.get(remote(r)) === local.get(r)?.sha256) present.add(r);
  }
  return present;
}

/**
 * One file to the mirror: rsync to a partial name (resumable), its SHA-256 checked there, then
 * renamed into place; a copy that differs is removed and the publish fails.
 */
async function uploadOne(
  o: PublishFilesOptions,
  ssh: MirrorSsh,
  f: { rel: string; size: number; sha256: string; final: string },
  io: { log: Logger; progress: ProgressSink; out: TextOut },
): Promise<PublishedFile> {
  const { rel, size, sha256, final } = f;
  const part = partName(final);
  let done = 0;
  io.progress.start(`upload ${rel}`, size);
  let res: Awaited<ReturnType<typeof run>>;
  try {
    res = await run(rsyncArgv(o.ssh, join(o.storeDir, rel), final, o.bwlimitKiB), {
      log: io.log,
      tag: 'rsync',
      signal: o.signal,
      cancelSignal: 'SIGTERM',
      // kill -9 of osbake must not leave an upload running.
      dieWithParent: true,
      tailLines: 40,
      onLine: (line) => {
        const n = parseRsyncProgress(line);
        if (n !== undefined && n > done) {
          io.progress.add(n - done);
          done = n;
        }
      },
    });
  } finally {
    io.progress.end();
  }
  const st = parseRsyncStats(res.tail);
  const sums = parseSha256sum((await ssh(['sha256sum', '--', part], [0, 1])).stdout);
  const got = sums.get(part);
  if (got !== sha256) {
    await ssh(['rm', '-f', '--', part]);
    throw new UserError(
      'E_PUBLISH_VERIFY',
      `${rel}: the mirror's copy has sha256 ${got ?? '(none)'}, expected ${sha256}; removed it`,
      'publish again; if it repeats, check the mirror disk',
    );
  }
  await ssh(['mv', '-f', '--', part, final]);
  const resumed = (st.matched ?? 0) > 0;
  io.out.write(
    `${rel}: ${resumed ? 'resumed' : 'uploaded'}, sent ${formatBytes(st.literal ?? size)} of ${formatBytes(size)}, sha256 verified on the mirror\n`,
  );
  return { rel, size, sha256, status: resumed ? 'resumed' : 'uploaded', literal: st.literal };
}

/** Upload files to the mirror (see the module comment); returns what happened to each. */
export async function publishFiles(o: PublishFilesOptions): Promise<PublishedFile[]> {
  const log = o.log ?? createNullLogger();
  const progress = o.progress ?? new ByteProgress();
  const out = o.out ?? process.stdout;
  const remote = (rel: string) => posix.join(o.ssh.target.path, rel);
  const ssh: MirrorSsh = (argv, okCodes) =>
    run(sshArgv(o.ssh, argv), {
      log,
      tag: 'ssh',
      signal: o.signal,
      okCodes,
      tailLines: 20,
      dieWithParent: true,
    }).catch((err: unknown) => {
      throw explainSshFailure(err, o.ssh);
    });
  const local = await checkLocalFiles(o, progress);
  const present = await presentOnMirror(o, ssh, local, remote);
  const results: PublishedFile[] = [];
  for (const rel of o.files) {
    const { size, sha256 } = local.get(rel) as { size: number; sha256: string };
    if (present.has(rel)) results.push({ rel, size, sha256, status: 'present' });
    else
      results.push(
        await uploadOne(o, ssh, { rel, size, sha256, final: remote(rel) }, { log, progress, out }),
      );
  }
  return results;
}

export function formatPublished(results: readonly PublishedFile[]): string {
  return formatTable(
    ['STATUS', 'FILE', 'SIZE', 'SENT', 'SHA256'],
    results.map((r) => [
      r.status,
      r.rel,
      formatBytes(r.size),
      r.status === 'present' ? '-' : formatBytes(r.literal ?? r.size),
      `${r.sha256.slice(0, 16)}…`,
    ]),
  );
}

/** The ssh settings from --to / --known-hosts / --identity, else osbake.yaml's publish section. */
export function resolveSshSettings(
  project: Project,
  o: { to?: string; knownHosts?: string; identity?: string },
): SshSettings {
  const to = o.to ?? project.config.publish.to;
  if (!to) {
    throw new UserError(
      'E_NO_MIRROR',
      'no mirror to publish to',
      'pass --to ssh://user@host/path or set publish.to in osbake.yaml',
    );
  }
  const target = parseSshUrl(to);
  const cfg = project.config.publish;
  const knownHosts = o.knownHosts
    ? resolve(o.knownHosts)
    : cfg.knownHosts
      ? resolve(project.root, cfg.knownHosts)
      : join(homedir(), '.ssh', 'known_hosts');
  if (!existsSync(knownHosts)) {
    const port = target.port ? `-p ${target.port} ` : '';
    throw new UserError(
      'E_KNOWN_HOSTS',
      `${knownHosts} does not exist: the mirror's host key cannot be checked`,
      `add the key after checking its fingerprint: ssh-keyscan ${port}${target.host} >> ${knownHosts}` +
        ' (or set publish.knownHosts in osbake.yaml)',
    );
  }
  const identity = o.identity ?? (cfg.identityFile ? resolve(project.root, cfg.identityFile) : undefined);
  if (identity !== undefined && !existsSync(identity)) {
    throw new UserError(
      'E_NO_IDENTITY',
      `the SSH key ${identity} does not exist`,
      o.identity
        ? 'give the private key file with --identity FILE'
        : `fix publish.identityFile in ${project.file}`,
    );
  }
  return { target, knownHosts, identityFile: identity };
}

/** The store files of one build (image, its sidecars and the patch bundle it made). */
export async function buildFiles(
  project: Project,
  name: string,
): Promise<{ artifact: string; files: string[] }> {
  const { images } = await readImageBuilds(project);
  const inStore = ['qcow2', 'raw'].some((ext) =>
    existsSync(join(project.storeDir, 'builds', `${name}.${ext}`)),
  );
  const b = resolveBuild(name, images, inStore);
  const entry = images.flatMap((i) => i.builds).find((x) => x.custom_data.artifact === b.artifact);
  // The file its record names (a stick is .raw); a build no manifest.json remembers: its .qcow2.
  const main = [`builds/${entry ? buildFileOf(entry) : `${b.artifact}.qcow2`}`];
  const bundle = entry?.custom_data.patch_bundle?.path;
  if (bundle) main.unshift(bundle);
  return { artifact: b.artifact, files: orderFiles(main, (r) => existsSync(join(project.storeDir, r))) };
}

/**
 * After a successful build: upload it to osbake.yaml's publish.to mirror, unless --no-publish,
 * publish.afterBuild is false or no mirror is configured (the build is in the local store anyway).
 */
export async function publishAfterBuild(
  project: Project,
  artifact: string,
  o: { skip?: boolean; signal?: AbortSignal; log?: Logger; out?: TextOut },
): Promise<PublishedFile[] | undefined> {
  const to = project.config.publish.to;
  if (o.skip || !to || !project.config.publish.afterBuild) return undefined;
  const out = o.out ?? process.stdout;
  try {
    const ssh = resolveSshSettings(project, {});
    const { files } = await buildFiles(project, artifact);
    out.write(`publishing ${artifact} to ${to} (osbake.yaml publish.to; --no-publish skips this)\n`);
    const results = await publishFiles({
      ssh,
      storeDir: project.storeDir,
      files,
      signal: o.signal,
      log: o.log,
      out,
    });
    out.write(formatPublished(results));
    return results;
  } catch (err) {
    const e = withContext(`publishing ${artifact} to ${to}`, err);
    if (e instanceof UserError) {
      throw new UserError(
        e.code,
        `${e.message} (the build itself is complete and in the store)`,
        `${e.hint ?? ''}; then: osbake publish ${artifact}`.replace(/^; /, ''),
      );
    }
    throw e;
  }
}
