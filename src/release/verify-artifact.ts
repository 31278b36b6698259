/**
 * One artifact of a release checked where it should be: in the local store (exists, not through a
 * symlink, size, SHA-256, its .sha256 sidecar) or on a mirror over HTTP (the body hashed as it
 * arrives, no temp file); the result and its line in the table.
 */
import { createHash } from 'node:crypto';
import { lstat, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { mirrorUrl } from '../artifacts/naming.js';
import type { ReleaseArtifact } from '../config/releases.js';
import { formatBytes, type ProgressSink } from '../log/progress.js';
import { formatTable } from '../log/table.js';

export type VerifyStatus = 'OK' | 'MISMATCH' | 'MISSING' | 'SIZE' | 'SYMLINK' | 'SIDECAR';

/**
 * What a `.sha256` sidecar says, against the artifact (pure): undefined when it is right (the
 * recorded SHA-256 and the artifact's file name, as `sha256sum -c` reads it), else what is wrong.
 */
export function sidecarProblem(
  text: string,
  a: Pick<ReleaseArtifact, 'sha256' | 'path'>,
): string | undefined {
  const name = a.path.split('/').at(-1) ?? a.path;
  const lines = text.split('\n').filter((l) => l.trim());
  const m = lines.length === 1 ? /^([0-9a-f]{64}) [ *](.+)$/.exec(lines[0] as string) : null;
  if (!m) return `${name}.sha256 is not one "<sha256>  ${name}" line`;
  if (m[2] !== name) return `${name}.sha256 names ${m[2]}, not ${name}`;
  if (m[1] !== a.sha256) return `${name}.sha256 says ${m[1]}`;
  return undefined;
}

/** The first component of storeDir/relPath (below storeDir) that is a symbolic link, if any. */
async function symlinkOnPath(storeDir: string, relPath: string): Promise<string | undefined> {
  let cur = storeDir;
  for (const part of relPath.split('/')) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) return cur;
  }
  return undefined;
}

export interface VerifyResult {
  artifact: ReleaseArtifact;
  status: VerifyStatus;
  /** Where it was looked for (file or URL). */
  location: string;
  /** What was found instead: the SHA-256, the size, the HTTP status or the error code. */
  got?: string;
}

const noProgress: ProgressSink = { start() {}, add() {}, end() {} };

/** Check one artifact in the local store: exists, same size, same SHA-256. */
export async function checkStoreArtifact(
  storeDir: string,
  a: ReleaseArtifact,
  progress: ProgressSink = noProgress,
): Promise<VerifyResult> {
  const file = join(storeDir, a.path);
  // A release names files, not links: a symlink could point anywhere and change under the record.
  const link = await symlinkOnPath(storeDir, a.path);
  if (link) return { artifact: a, status: 'SYMLINK', location: file, got: link };
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return { artifact: a, status: 'MISSING', location: file, got: 'not a regular file' };
    size = st.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { artifact: a, status: 'MISSING', location: file, got: code };
  }
  if (size !== a.size) return { artifact: a, status: 'SIZE', location: file, got: String(size) };
  progress.start(a.path, a.size);
  let sha: string;
  try {
    sha = await sha256File(file, (n) => progress.add(n));
  } finally {
    progress.end();
  }
  if (sha !== a.sha256) return { artifact: a, status: 'MISMATCH', location: file, got: sha };
  // The .sha256 beside it is what users run `sha256sum -c` on: it must agree (absent is allowed).
  const sidecar = await readFile(`${file}.sha256`, 'utf8').catch(() => undefined);
  const problem = sidecar === undefined ? undefined : sidecarProblem(sidecar, a);
  if (problem) return { artifact: a, status: 'SIDECAR', location: `${file}.sha256`, got: problem };
  return { artifact: a, status: 'OK', location: file, got: sha };
}

/** `<mirror>/<path>`, each path segment URL-encoded. */

export function errorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

/** Check one artifact on a mirror: HTTP GET, hashing the body as it streams in. */
export async function checkMirrorArtifact(
  mirror: string,
  a: ReleaseArtifact,
  progress: ProgressSink = noProgress,
  fetchImpl: typeof fetch = fetch,
): Promise<VerifyResult> {
  const url = mirrorUrl(mirror, a.path);
  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: 'follow' });
  } catch (err) {
    return { artifact: a, status: 'MISSING', location: url, got: errorCode(err) };
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return { artifact: a, status: 'MISSING', location: url, got: `HTTP ${res.status}` };
  }
  const length = res.headers.get('content-length');
  if (length !== null && Number(length) !== a.size) {
    await res.body.cancel();
    return { artifact: a, status: 'SIZE', location: url, got: length };
  }
  const hash = createHash('sha256');
  let bytes = 0;
  progress.start(a.path, a.size);
  try {
    for await (const chunk of res.body) {
      hash.update(chunk);
      bytes += chunk.length;
      progress.add(chunk.length);
    }
  } catch (err) {
    return { artifact: a, status: 'MISSING', location: url, got: `transfer failed: ${errorCode(err)}` };
  } finally {
    progress.end();
  }
  if (bytes !== a.size) return { artifact: a, status: 'SIZE', location: url, got: String(bytes) };
  const sha = hash.digest('hex');
  if (sha !== a.sha256) return { artifact: a, status: 'MISMATCH', location: url, got: sha };
  // The mirror's .sha256 (what its users check downloads against): must agree when it is there.
  const sumUrl = `${url}.sha256`;
  try {
    const r = await fetchImpl(sumUrl, { redirect: 'follow' });
    if (r.ok) {
      const problem = sidecarProblem(await r.text(), a);
      if (problem) return { artifact: a, status: 'SIDECAR', location: sumUrl, got: problem };
    } else await r.body?.cancel();
  } catch {
    // No sidecar reachable: the artifact itself was verified.
  }
  return { artifact: a, status: 'OK', location: url, got: sha };
}

/** What to print after the status for one result. */
export function describeResult(r: VerifyResult): string {
  const a = r.artifact;
  switch (r.status) {
    case 'OK':
      return `${formatBytes(a.size)}, sha256 ${a.sha256.slice(0, 16)}…`;
    case 'MISMATCH':
      return `sha256 expected ${a.sha256}, got ${r.got}`;
    case 'SIZE':
      return `size expected ${a.size} bytes, got ${r.got} bytes`;
    case 'MISSING':
      return `not found (${r.got}): ${r.location}`;
    case 'SYMLINK':
      return `reached through the symbolic link ${r.got}: a release records files, not links`;
    case 'SIDECAR':
      return `${r.got} (${r.location}): sha256sum -c would fail`;
  }
}

export function formatResults(results: readonly VerifyResult[]): string {
  return formatTable(
    ['STATUS', 'KIND', 'NAME', 'PATH', 'DETAIL'],
    results.map((r) => [r.status, r.artifact.kind, r.artifact.name, r.artifact.path, describeResult(r)]),
  );
}
