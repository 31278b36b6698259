/** The `osbake verify` verb: a release's records, signatures and artifacts, here or on a mirror. */
import { mirrorUrl } from '../artifacts/naming.js';
import { loadProject, type Project } from '../config/project.js';
import { loadReleases, type Release, releasesFile, requireRelease } from '../config/releases.js';
import { UserError } from '../errors.js';
import { createNullLogger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { ByteProgress, type ProgressSink } from '../log/progress.js';
import { checkReleaseSignature } from './signature.js';
import { checkStoreReleaseJson, compareReleaseRecords, fetchMirrorRelease } from './verify.js';
import {
  checkMirrorArtifact,
  checkStoreArtifact,
  formatResults,
  type VerifyResult,
} from './verify-artifact.js';

export interface VerifyOptions {
  projectDir: string;
  release: string;
  mirror?: string;
  out?: TextOut;
  progress?: ProgressSink;
  /** Print the results as JSON instead of the table. */
  json?: boolean;
  /** Do not check R's signature (said in the output, and to stderr). */
  skipSignature?: boolean;
}

/**
 * The artifact list to check. Local store: manifest.yaml. With --mirror: manifest.yaml when the
 * project records R (and the mirror's /api/releases, when it has one, must list the same
 * artifacts); else the mirror's /api/releases (no project needed then).
 */
async function releaseToVerify(
  o: VerifyOptions,
  out: TextOut,
): Promise<{ release: Release; project?: Project; yamlFile?: string }> {
  let project: Project | undefined;
  try {
    project = await loadProject(o.projectDir);
  } catch (err) {
    if (!(o.mirror !== undefined && err instanceof UserError && err.code === 'E_NO_PROJECT')) throw err;
  }
  const file = project ? releasesFile(project) : undefined;
  // manifest.yaml parsed once for the whole command.
  const releases = file ? await loadReleases(file) : undefined;
  const local = releases?.releases[o.release];
  if (o.mirror === undefined) {
    const release = requireRelease(
      file as string,
      releases ?? (await loadReleases(file as string)),
      o.release,
    );
    return { release, project, yamlFile: file };
  }
  const remote = await fetchMirrorRelease(o.mirror, o.release);
  if (local && remote) {
    const diff = compareReleaseRecords(local, remote);
    if (diff.length > 0) {
      throw new UserError(
        'E_VERIFY',
        `the mirror lists other artifacts for release ${o.release} than ${file}: ${diff.join('; ')}`,
        "publish the release again (osbake publish --release R), or update the mirror's store/releases/<R>.json",
      );
    }
  }
  if (local) return { release: local, project };
  if (remote) {
    out.write(`release ${o.release}: artifact list from ${mirrorUrl(o.mirror, 'api/releases')}\n`);
    return { release: remote, project };
  }
  if (file && releases) requireRelease(file, releases, o.release);
  throw new UserError(
    'E_NO_RELEASE',
    `no release "${o.release}" on ${o.mirror}${file ? ` or in ${file}` : ''}`,
    "osbake verify needs the release in manifest.yaml or in the mirror's /api/releases",
  );
}

/** Verify every artifact of a release; throws E_VERIFY when any is not as recorded. */
export async function runVerify(o: VerifyOptions): Promise<VerifyResult[]> {
  const real = o.out ?? process.stdout;
  // With --json only the JSON goes to stdout.
  const out = o.json ? { write: () => true } : real;
  if (o.mirror !== undefined && !/^https?:\/\/[^/]/.test(o.mirror)) {
    throw new UserError(
      'E_USAGE',
      `--mirror ${o.mirror} is not an http:// or https:// URL`,
      'e.g. --mirror http://mirror.example/osbake (the directory holding builds/ and repos/)',
    );
  }
  const { release, project, yamlFile } = await releaseToVerify(o, out);
  const progress = o.progress ?? new ByteProgress();
  const storeDir = project?.storeDir ?? '';
  const where = o.mirror ?? storeDir;
  // The signatures first: no checksum of the record is trusted before them (throws when bad).
  const signature = await checkReleaseSignature({
    project,
    name: o.release,
    release,
    storeDir,
    mirror: o.mirror,
    log: createNullLogger(),
    skipSignature: o.skipSignature,
  });
  out.write(`signature: ${signature.summary}\n`);
  if (o.skipSignature) process.stderr.write(`osbake: warning: ${signature.summary}\n`);
  if (o.mirror === undefined && project && yamlFile) {
    await checkStoreReleaseJson(project.storeDir, o.release, release, yamlFile);
  }
  out.write(`verifying ${release.artifacts.length} artifact(s) of release ${o.release} in ${where}\n`);
  const results: VerifyResult[] = [];
  for (const a of release.artifacts) {
    results.push(
      o.mirror === undefined
        ? await checkStoreArtifact(storeDir, a, progress)
        : await checkMirrorArtifact(o.mirror, a, progress),
    );
  }
  out.write(formatResults(results));
  if (o.json) {
    real.write(
      `${JSON.stringify(
        {
          release: o.release,
          where,
          verified: results.every((r) => r.status === 'OK'),
          signature: signature.result,
          artifacts: results.map((r) => ({
            name: r.artifact.name,
            kind: r.artifact.kind,
            path: r.artifact.path,
            status: r.status,
            location: r.location,
            expected_sha256: r.artifact.sha256,
            ...(r.got !== undefined ? { got: r.got } : {}),
          })),
        },
        null,
        2,
      )}\n`,
    );
  }
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

/**
 * Before osbake burn writes release R's installer: R's signature against keys/ (policy as for
 * verify: bad is an error, unsigned only with signing.required), then the installer file's
 * recorded size and SHA-256 (the one the signed R.SHA256SUMS lists). Returns the line to show.
 */
