/** The `osbake publish` verb: a build's or a release's files to the mirror (publish.ts does the copying). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadProject } from '../config/project.js';
import { loadReleases, releasesFile, requireRelease } from '../config/releases.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ProgressSink, TextOut } from '../log/progress.js';
import { releaseRecordPaths } from '../release/signature.js';
import {
  buildFiles,
  formatPublished,
  type PublishedFile,
  publishFiles,
  resolveSshSettings,
} from './publish.js';
import { orderFiles, PARTIAL_DIR } from './publish-plan.js';

export interface RunPublishOptions {
  projectDir: string;
  build?: string;
  release?: string;
  to?: string;
  knownHosts?: string;
  identity?: string;
  bwlimitKiB?: number;
  signal?: AbortSignal;
  out?: TextOut;
  progress?: ProgressSink;
  /** Every command and its output (default: nothing logged). */
  log?: Logger;
}

export async function runPublish(o: RunPublishOptions): Promise<PublishedFile[]> {
  const out = o.out ?? process.stdout;
  if ((o.build === undefined) === (o.release === undefined)) {
    throw new UserError(
      'E_USAGE',
      'osbake publish needs a build or --release R (one of them)',
      'e.g. osbake publish debian12-base, or osbake publish --release 2026.11',
    );
  }
  const project = await loadProject(o.projectDir);
  const ssh = resolveSshSettings(project, o);
  let files: string[];
  const expected = new Map<string, string>();
  let what: string;
  if (o.release !== undefined) {
    const file = releasesFile(project);
    const release = requireRelease(file, await loadReleases(file), o.release);
    for (const a of release.artifacts) expected.set(a.path, a.sha256);
    const exists = (r: string) => existsSync(join(project.storeDir, r));
    // The release's records (R.SHA256SUMS, signatures, R.json) after every artifact.
    files = orderFiles(
      release.artifacts.map((a) => a.path),
      exists,
      releaseRecordPaths(o.release).filter(exists),
    );
    what = `release ${o.release}`;
  } else {
    const b = await buildFiles(project, o.build as string);
    files = b.files;
    what = b.artifact;
  }
  const dest = `${ssh.target.user ? `${ssh.target.user}@` : ''}${ssh.target.host}:${ssh.target.path}`;
  out.write(
    `publishing ${what} (${files.length} files) to ${dest} (temporary names, ${PARTIAL_DIR}/ for resumes)\n`,
  );
  const results = await publishFiles({
    ssh,
    storeDir: project.storeDir,
    files,
    expected,
    bwlimitKiB: o.bwlimitKiB,
    signal: o.signal,
    progress: o.progress,
    out,
    log: o.log,
  });
  out.write(formatPublished(results));
  out.write(`published ${what} to ${dest}: ${results.length} files, sha256 checked on the mirror\n`);
  return results;
}
