/**
 * osbake verify R [--mirror URL]: every artifact of release R, in the local store or on a mirror
 * over HTTP, has the recorded size and SHA-256. The hash is computed as bytes arrive (no temp file).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../artifacts/checksum.js';
import { loadProject } from '../config/project.js';
import { loadReleases, type ReleaseArtifact, releasesFile, requireRelease } from '../config/releases.js';
import { UserError } from '../errors.js';
import { ByteProgress, formatBytes } from '../log/progress.js';
import { formatTable } from '../log/table.js';

export type VerifyStatus = 'OK' | 'MISMATCH' | 'MISSING' | 'SIZE';

export interface VerifyResult {
  artifact: ReleaseArtifact;
  status: VerifyStatus;
  /** Where it was looked for (file or URL). */
  location: string;
  /** What was found instead: the SHA-256, the size, the HTTP status or the error code. */
  got?: string;
}

/** Reports progress of the bytes read for one artifact (ByteProgress, or nothing). */
export interface ProgressSink {
  start(label: string, total?: number): void;
  add(n: number): void;
  end(): void;
}

const noProgress: ProgressSink = { start() {}, add() {}, end() {} };

/** Check one artifact in the local store: exists, same size, same SHA-256. */
export async function checkStoreArtifact(
  storeDir: string,
  a: ReleaseArtifact,
  progress: ProgressSink = noProgress,
): Promise<VerifyResult> {
  const file = join(storeDir, a.path);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { artifact: a, status: 'MISSING', location: file, got: code };
  }
  if (size !== a.size) return { artifact: a, status: 'SIZE', location: file, got: String(size) };
  progress.start(a.path, a.size);
  try {
    const sha = await sha256File(file, (n) => progress.add(n));
    return { artifact: a, status: sha === a.sha256 ? 'OK' : 'MISMATCH', location: file, got: sha };
  } finally {
    progress.end();
  }
}

/** `<mirror>/<path>`, each path segment URL-encoded. */
export function mirrorUrl(mirror: string, path: string): string {
  return `${mirror.replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

function errorCode(err: unknown): string {
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
  return { artifact: a, status: sha === a.sha256 ? 'OK' : 'MISMATCH', location: url, got: sha };
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
  }
}

export function formatResults(results: readonly VerifyResult[]): string {
  return formatTable(
    ['STATUS', 'KIND', 'NAME', 'PATH', 'DETAIL'],
    results.map((r) => [r.status, r.artifact.kind, r.artifact.name, r.artifact.path, describeResult(r)]),
  );
}

export interface VerifyOptions {
  projectDir: string;
  release: string;
  mirror?: string;
  out?: Pick<NodeJS.WriteStream, 'write'>;
  progress?: ProgressSink;
}

/** Verify every artifact of a release; throws E_VERIFY when any is not as recorded. */
export async function verifyRelease(o: VerifyOptions): Promise<VerifyResult[]> {
  const out = o.out ?? process.stdout;
  if (o.mirror !== undefined && !/^https?:\/\/[^/]/.test(o.mirror)) {
    throw new UserError(
      'E_USAGE',
      `--mirror ${o.mirror} is not an http:// or https:// URL`,
      'e.g. --mirror http://mirror.example/osbake (the directory holding builds/ and repos/)',
    );
  }
  const project = await loadProject(o.projectDir);
  const file = releasesFile(project);
  const release = requireRelease(file, await loadReleases(file), o.release);
  const progress = o.progress ?? new ByteProgress();
  const where = o.mirror ?? project.storeDir;
  out.write(`verifying ${release.artifacts.length} artifact(s) of release ${o.release} in ${where}\n`);
  const results: VerifyResult[] = [];
  for (const a of release.artifacts) {
    results.push(
      o.mirror === undefined
        ? await checkStoreArtifact(project.storeDir, a, progress)
        : await checkMirrorArtifact(o.mirror, a, progress),
    );
  }
  out.write(formatResults(results));
  const failed = results.filter((r) => r.status !== 'OK');
  if (failed.length > 0) {
    throw new UserError(
      'E_VERIFY',
      `${failed.length} of ${results.length} artifact(s) of release ${o.release} failed verification`,
      o.mirror === undefined
        ? 'rebuild or restore the files listed above, or rerun osbake release with --force'
        : 'copy the files listed above to the mirror again, then rerun osbake verify',
    );
  }
  out.write(`all ${results.length} artifact(s) of release ${o.release} verified\n`);
  return results;
}
