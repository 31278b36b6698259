/**
 * The nginx engine of `osbake serve`: nginx sends the store's files itself (sendfile(2), ranges,
 * If-Range, ETag, 304), and everything it should not decide goes to osbake's own server on a
 * loopback port behind it — the page, the API, listings, computed .sha256 sidecars, symlinks,
 * dotfiles, every unusual path (encodings, dot segments) and every method but GET/HEAD. So nginx
 * only ever answers for a plain path to a regular file reached without a symlink; the rules of
 * paths.ts stay the single source of truth for the rest.
 */
import { constants, existsSync, writeFileSync } from 'node:fs';
import { access, mkdtemp, open, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { run, startService } from '../exec/run.js';
import { disown, own } from '../fsx/owned.js';
import { createNullLogger } from '../log/logger.js';
import { TYPES } from './http.js';

export interface NginxFrontOptions {
  /** The store (a real path). */
  root: string;
  host: string;
  port: number;
  /** Port of osbake's own server on 127.0.0.1. */
  backendPort: number;
  workers: number;
  /** osbake runs as root: nginx's workers then stay root too. */
  runAsRoot?: boolean;
  /** Working directory for the config, pid file and nginx's temporary files. */
  dir: string;
  /** osbake serve --netboot: nginx sends /netboot/<release>/<file> from the cache entry itself. */
  netboot?: { release: string; dir: string; files: readonly string[] };
}

/**
 * A raw request line nginx may serve itself: GET or HEAD of a path whose segments are plain names
 * (letters, digits, `._+~-`, not starting with a dot), no query, not a `.cdx.json` (its type needs
 * two extensions). Everything else goes to osbake's server, which applies paths.ts.
 */
export const DIRECT_REQUEST = '^(GET|HEAD):(/[A-Za-z0-9_+~-][A-Za-z0-9._+~-]*)+$';

function quote(s: string): string {
  if (/["\\\n$]/.test(s)) {
    throw new UserError(
      'E_NGINX_PATH',
      `cannot put ${JSON.stringify(s)} in an nginx configuration`,
      'use a store path without quotes, backslashes, $ or newlines, or --engine node',
    );
  }
  return `"${s}"`;
}

/**
 * The netboot files: a regex location with a *named* capture (the map's regex, evaluated by the
 * `if`, resets the numbered ones) and alias into the cache entry; anything unusual goes to osbake.
 * Release and file names are [A-Za-z0-9._-] only (a dot written [.]), so the regex needs no quoting.
 */
function netbootLocation(o: NginxFrontOptions): string {
  if (!o.netboot) return '';
  const safe = (n: string) => {
    if (!/^[A-Za-z0-9._-]+$/.test(n)) throw new Error(`netboot name ${JSON.stringify(n)} in nginx.conf`);
    return n.replaceAll('.', '[.]');
  };
  const names = o.netboot.files.map(safe).join('|');
  quote(o.netboot.dir);
  return `    location ~ ^/netboot/${safe(o.netboot.release)}/(?<osbake_nbfile>${names})$ {
      if ($osbake_direct = 0) { return 418; }
      alias "${o.netboot.dir}/$osbake_nbfile";
    }`;
}

/** The nginx configuration (pure). */
export function nginxConfig(o: NginxFrontOptions): string {
  const listen = o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  // One line per type (nginx warns about a type listed twice); single extensions only.
  const byType = new Map<string, string[]>();
  for (const [ext, type] of TYPES.filter(([e]) => e.split('.').length === 2)) {
    const t = type.split(';')[0] as string;
    byType.set(t, [...(byType.get(t) ?? []), ext.slice(1)]);
  }
  const types = [...byType].map(([t, exts]) => `    ${t} ${exts.join(' ')};`).join('\n');
  const charsetTypes = TYPES.filter(([, t]) => t.includes('charset=utf-8'))
    .map(([, t]) => t.split(';')[0])
    .filter((t, i, all) => t !== 'text/html' && all.indexOf(t) === i);
  const backend = `http://127.0.0.1:${o.backendPort}`;
  const temp = (name: string) => `${name}_temp_path ${quote(join(o.dir, name))};`;
  // Workers read the store with osbake's own rights (as root: root, not nginx's default nobody).
  const user = o.runAsRoot ? 'user root root;\n' : '';
  return `# Written by osbake serve --engine nginx; removed when it stops.
${user}worker_processes ${o.workers};
pid ${quote(join(o.dir, 'nginx.pid'))};
error_log stderr alert;
events { worker_connections 4096; }
http {
  types {
${types}
  }
  default_type application/octet-stream;
  charset utf-8;
  charset_types ${charsetTypes.join(' ')};
  log_format osbake '$time_iso8601 $remote_addr "$request_method $request_uri" $status $body_bytes_sent \${request_time}s';
  # Buffered into a file that osbake follows: no worker ever waits for osbake (a FIFO made every
  # request wait for osbake to read its log line: small files at half nginx's own rate).
  access_log ${quote(join(o.dir, 'access.log'))} osbake buffer=64k flush=1s;
  log_not_found off;
  server_tokens off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 5;
  client_max_body_size 128k;
  ${temp('client_body')}
  ${temp('proxy')}
  ${temp('fastcgi')}
  ${temp('uwsgi')}
  ${temp('scgi')}
  map "$request_method:$request_uri" $osbake_direct {
    "~${DIRECT_REQUEST}" 1;
    default 0;
  }
  server {
    listen ${listen};
    root ${quote(o.root)};
    # Any symlink below the root: nginx refuses (403) and osbake decides (inside the root is fine).
    disable_symlinks on from=$document_root;
    add_header X-Content-Type-Options nosniff always;
    # HTTP/0.9 (a request line without a version): refused, as osbake's own engine refuses it.
    if ($server_protocol = "") { return 400; }
    error_page 403 418 = @osbake;
    location / {
      if ($osbake_direct = 0) { return 418; }
      try_files $uri @osbake;
    }
    location ~ \\.cdx\\.json$ { return 418; }
    # .sha256 answers come from osbake's records (a stored sidecar is checked against them).
    location ~ \\.sha256$ { return 418; }
    location = / { return 418; }
${netbootLocation(o)}
    location @osbake {
      proxy_pass ${backend};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_buffering off;
    }
  }
}
`;
}

/** A free TCP port on host (nginx cannot listen on port 0 and report it). */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface NginxFront {
  port: number;
  version: string;
  /** Resolves with nginx's exit code when it exits (for whatever reason). */
  exited: Promise<number | null>;
  /** Begin a graceful stop (SIGQUIT) and resolve once the port refuses new connections (≤ 3 s). */
  quit(): Promise<void>;
  /** Graceful stop: nginx stops listening and lets downloads finish for graceMs, then is killed. */
  stop(graceMs?: number): Promise<void>;
}

/** Is nginx installed (on PATH, or where Debian puts it)? Returns its path. */
export function findNginx(): Promise<string | undefined> {
  return findTool('nginx');
}

async function findTool(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    const p = join(d, name);
    if (
      await access(p, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

/** Why nginx exited before it listened, as osbake's own server would say it (pure). */
export function nginxStartError(stderr: readonly string[], o: { host: string; port: number }): UserError {
  const text = stderr.join('\n');
  const why = /\[emerg\][^\n]*?: (.*)/.exec(text)?.[1] ?? stderr.at(-1) ?? '';
  if (/Address already in use/.test(why)) {
    // The same words as osbake's own server.
    return new UserError(
      'E_LISTEN',
      `cannot listen on ${o.host}:${o.port}: EADDRINUSE`,
      'pick another --port, or stop what is using it',
    );
  }
  return new UserError(
    'E_NGINX',
    `nginx could not start on ${o.host}:${o.port}: ${why}`,
    'fix what nginx says, or serve without it: --engine node',
  );
}

/** nginx -v (printed to stderr, which run() keeps as the output's tail): "1.22.1", or "?". */
async function nginxVersion(nginx: string): Promise<string> {
  const versionLine = (
    await run([nginx, '-v'], { log: createNullLogger(), tailLines: 5 }).catch(() => undefined)
  )?.tail.join('\n');
  return /nginx\/(\S+)/.exec(versionLine ?? '')?.[1] ?? '?';
}

/** Start nginx in front of osbake's server; resolves once it accepts connections. */
export async function startNginxFront(
  nginx: string,
  o: Omit<NginxFrontOptions, 'dir'>,
  log: (line: string) => void,
  access: (line: string) => void,
): Promise<NginxFront> {
  // Recorded as osbake's own: after a kill -9 (nginx then stops by --pdeathsig) `osbake clean`
  // removes it; nothing here deletes other directories by their name.
  const dir = await mkdtemp(join(tmpdir(), 'osbake-nginx-'));
  own(dir, 'temp');
  const cleanupDir = async () => {
    await rm(dir, { recursive: true, force: true });
    disown(dir);
  };
  const conf = join(dir, 'nginx.conf');
  try {
    writeFileSync(conf, nginxConfig({ ...o, dir }));
  } catch (err) {
    await cleanupDir();
    throw err;
  }
  const follower = followLines(join(dir, 'access.log'), access);
  // setpriv --pdeathsig: nginx gets SIGTERM (its fast shutdown) if osbake dies without stopping it,
  // even by SIGKILL, so no orphaned nginx keeps the port.
  const argv = [nginx, '-c', conf, '-p', dir, '-e', 'stderr', '-g', 'daemon off;'];
  const setpriv = await findTool('setpriv');
  const [file, ...args] = setpriv ? [setpriv, '--pdeathsig', 'TERM', ...argv] : argv;
  // Until it listens, nginx's errors are kept for the one-line error below; afterwards shown.
  const stderr: string[] = [];
  let started = false;
  const child = startService([file as string, ...args], {
    log: createNullLogger(),
    tag: 'nginx',
    onStderrLine: (line) => {
      if (started) log(`nginx: ${line}`);
      else stderr.push(line);
    },
  });
  // The rest of the access log once nginx has exited (it flushes its buffer on the way out).
  const finishAccessLog = () => follower.stop();
  const exited = child.exited;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const version = await nginxVersion(nginx);
  const connectHost = o.host === '0.0.0.0' ? '127.0.0.1' : o.host === '::' ? '::1' : o.host;
  for (let i = 0; ; i++) {
    if (gone) {
      await finishAccessLog();
      await cleanupDir();
      throw nginxStartError(stderr, o);
    }
    // nginx writes its pid file once its sockets are bound (a port in use fails before that).
    if (existsSync(join(dir, 'nginx.pid')) && (await answers(connectHost, o.port))) break;
    if (i > 200) {
      await child.stop('SIGKILL', 0);
      await finishAccessLog();
      await cleanupDir();
      throw new UserError('E_NGINX', 'nginx did not start listening within 10 s', 'try --engine node');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  started = true;
  return runningFront(child, { port: o.port, connectHost, version, isGone: () => gone }, async () => {
    await finishAccessLog();
    await cleanupDir();
  });
}

/**
 * The handle of an nginx that listens: quit (SIGQUIT: listening sockets closed, requests in flight
 * finish) and stop (quit, graceMs for the downloads, then SIGTERM, SIGKILL; then `finish`).
 */
function runningFront(
  child: ReturnType<typeof startService>,
  f: { port: number; connectHost: string; version: string; isGone: () => boolean },
  finish: () => Promise<void>,
): NginxFront {
  let stopping: Promise<void> | undefined;
  let quitting = false;
  const quit = async () => {
    if (f.isGone() || quitting) return;
    quitting = true;
    child.kill('SIGQUIT');
    for (let i = 0; i < 60 && !f.isGone() && (await answers(f.connectHost, f.port)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    port: f.port,
    version: f.version,
    exited: child.exited,
    quit,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (!f.isGone()) {
          await quit();
          // Downloads in flight get graceMs, then SIGTERM (nginx's fast stop), then SIGKILL.
          await child.stop(undefined, graceMs);
        }
        await finish();
      })();
      return stopping;
    },
  };
}

/**
 * Follow a file that another process appends lines to (nginx's buffered access log): every
 * `everyMs`, the bytes added since the last look are split into lines and handed on; a line
 * without its newline yet waits for the next look. stop() reads what is left, the last partial
 * line included.
 */
export function followLines(
  file: string,
  onLine: (line: string) => void,
  everyMs = 500,
): { stop(): Promise<void> } {
  let pos = 0;
  let rest = '';
  let reading: Promise<void> = Promise.resolve();
  const readNew = async () => {
    const fh = await open(file, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      const { size } = await fh.stat();
      if (size < pos) pos = 0; // truncated or replaced: from the start
      while (pos < size) {
        const buf = Buffer.alloc(Math.min(size - pos, 1 << 20));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const text = rest + buf.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) onLine(l);
      }
    } finally {
      await fh.close();
    }
  };
  const timer = setInterval(() => {
    reading = reading.then(readNew).catch(() => undefined);
  }, everyMs);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await reading;
        await readNew().catch(() => undefined);
        if (rest) onLine(rest);
        rest = '';
      })();
      return stopped;
    },
  };
}
