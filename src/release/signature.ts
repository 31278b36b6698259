/**
 * A release's signed records in store/releases/: R.json (the release record), R.SHA256SUMS (every
 * artifact's checksum, `sha256sum -c` from the store's root), and when a key is configured their
 * detached, armored signatures R.json.asc and R.SHA256SUMS.asc. Verification checks both
 * signatures against the repository's keys/ before any checksum in them is trusted.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mirrorUrl } from '../artifacts/naming.js';
import { writeFileAtomically } from '../config/atomic.js';
import type { Project } from '../config/project.js';
import type { Release } from '../config/releases.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { describeSignature, detachSign, type SignatureResult } from '../signing/gpg.js';
import {
  checkSignature,
  keysDir,
  type SigningKey,
  signatureError,
  withTrustKeyring,
} from '../signing/project-keys.js';

export function releaseRecordFiles(storeDir: string, name: string) {
  const dir = join(storeDir, 'releases');
  return {
    dir,
    json: join(dir, `${name}.json`),
    sums: join(dir, `${name}.SHA256SUMS`),
    jsonSig: join(dir, `${name}.json.asc`),
    sumsSig: join(dir, `${name}.SHA256SUMS.asc`),
  };
}

/**
 * The store-relative paths of a release's record files in upload order (pure): the checksums and
 * the signatures first, R.json (what a mirror's API lists) last.
 */
export function releaseRecordPaths(name: string): string[] {
  return ['SHA256SUMS', 'SHA256SUMS.asc', 'json.asc', 'json'].map((x) => `releases/${name}.${x}`);
}

/** R.json's content (pure). */
export function releaseJson(name: string, r: Release): object {
  return {
    release: name,
    date: r.date,
    git_commit: r.git_commit,
    ...(r.signed_by ? { signed_by: r.signed_by } : {}),
    artifacts: r.artifacts,
  };
}

/** `<sha256>  <store-relative path>` per artifact: `cd store && sha256sum -c releases/R.SHA256SUMS` (pure). */
export function sha256sumsText(r: Release): string {
  return r.artifacts.map((a) => `${a.sha256}  ${a.path}\n`).join('');
}

/**
 * Write R.json and R.SHA256SUMS, signed when a key is given. The signatures are made first (in a
 * scratch directory), so a signing failure writes nothing; an unsigned release removes old
 * signatures, which would no longer match.
 */
export async function writeReleaseRecords(
  storeDir: string,
  name: string,
  recorded: Release,
  key: SigningKey | undefined,
  log: Logger,
): Promise<void> {
  const f = releaseRecordFiles(storeDir, name);
  const json = `${JSON.stringify(releaseJson(name, recorded), null, 2)}\n`;
  const sums = sha256sumsText(recorded);
  await mkdir(f.dir, { recursive: true });
  if (!key) {
    await writeFileAtomically(f.json, json);
    await writeFileAtomically(f.sums, sums);
    await rm(f.jsonSig, { force: true });
    await rm(f.sumsSig, { force: true });
    return;
  }
  const scratch = await mkdtemp(join(tmpdir(), 'osbake-sign-'));
  try {
    const sigs: string[] = [];
    for (const [base, text] of [
      ['R.json', json],
      ['R.SHA256SUMS', sums],
    ] as const) {
      await writeFile(join(scratch, base), text);
      await detachSign(key.home, key.fingerprint, join(scratch, base), join(scratch, `${base}.asc`), log);
      sigs.push(await readFile(join(scratch, `${base}.asc`), 'utf8'));
    }
    await writeFileAtomically(f.json, json);
    await writeFileAtomically(f.sums, sums);
    await writeFileAtomically(f.jsonSig, sigs[0] as string);
    await writeFileAtomically(f.sumsSig, sigs[1] as string);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The artifacts of a record as one comparable string, whatever the key order (pure). */
function artifactSet(list: unknown): string {
  if (!Array.isArray(list)) return '';
  return list
    .map((a: Record<string, unknown>) => JSON.stringify([a.kind, a.name, a.path, a.sha256, a.size]))
    .sort()
    .join('\n');
}

export interface ReleaseSignature {
  /** R.json's signature, then R.SHA256SUMS's (the worse one decides). */
  result: SignatureResult;
  /** What was checked, in one line. */
  summary: string;
}

/** The worse of two results (pure): anything not good beats good; unsigned beats nothing else. */
function worse(a: SignatureResult, b: SignatureResult): SignatureResult {
  if (a.status === 'good') return b;
  if (b.status === 'good') return a;
  if (a.status === 'unsigned') return b;
  return a;
}

/**
 * The state of release R's signatures against the keys in keysDir (store or mirror), without
 * policy: good only when both R.json and R.SHA256SUMS verify and say what `release` says.
 */
/** Which release's records to check, and where: the store, or a mirror over HTTP. */
export interface ReleaseRecordsAt {
  name: string;
  release: Release;
  storeDir?: string;
  mirror?: string;
  log: Logger;
  fetchImpl?: typeof fetch;
}

export async function releaseSignatureState(
  o: ReleaseRecordsAt & { keysDir?: string },
): Promise<SignatureResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'osbake-verify-sig-'));
  try {
    const local = o.mirror === undefined ? releaseRecordFiles(o.storeDir ?? '', o.name) : undefined;
    const files = local ?? releaseRecordFiles(scratch, o.name);
    if (o.mirror !== undefined) {
      await mkdir(files.dir, { recursive: true });
      const fetchImpl = o.fetchImpl ?? fetch;
      for (const [rel, dest] of [
        [`releases/${o.name}.json`, files.json],
        [`releases/${o.name}.json.asc`, files.jsonSig],
        [`releases/${o.name}.SHA256SUMS`, files.sums],
        [`releases/${o.name}.SHA256SUMS.asc`, files.sumsSig],
      ] as const) {
        const res = await fetchImpl(mirrorUrl(o.mirror, rel)).catch(() => undefined);
        if (res?.ok) await writeFile(dest, Buffer.from(await res.arrayBuffer()));
        else await res?.body?.cancel();
      }
    }
    if (!existsSync(files.jsonSig) && !existsSync(files.sumsSig)) return { status: 'unsigned' };
    if (!o.keysDir || !existsSync(o.keysDir)) {
      return { status: 'error', reason: 'no keys/ directory (the trust root) here to check it against' };
    }
    let result: SignatureResult;
    try {
      result = await withTrustKeyring(o.keysDir, o.log, async (keyring) => {
        const a = await checkSignature(keyring, files.jsonSig, files.json, o.log);
        const b = await checkSignature(keyring, files.sumsSig, files.sums, o.log);
        // Both must be signed once one is: a missing one is as bad as a bad one.
        const fix = (r: SignatureResult): SignatureResult =>
          r.status === 'unsigned'
            ? { status: 'error', reason: 'one of R.json and R.SHA256SUMS is not signed' }
            : r;
        return worse(fix(a), fix(b));
      });
    } catch (err) {
      // A file in keys/ that is not a key: not checkable, said as such (serve shows it; verify fails).
      if (err instanceof UserError) return { status: 'error', reason: err.message };
      throw err;
    }
    if (result.status !== 'good') return result;
    // Signed and good: now the signed files must say what the record says.
    const sums = await readFile(files.sums, 'utf8').catch(() => '');
    if (sums !== sha256sumsText(o.release)) {
      return {
        status: 'error',
        reason: `${o.name}.SHA256SUMS is signed but lists other checksums than the release record`,
      };
    }
    const json = JSON.parse(await readFile(files.json, 'utf8').catch(() => '{}')) as { artifacts?: unknown };
    if (artifactSet(json.artifacts) !== artifactSet(o.release.artifacts)) {
      return {
        status: 'error',
        reason: `${o.name}.json is signed but lists other artifacts than the release record`,
      };
    }
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Check release R's signatures (store or mirror) with the project's keys/ and its policy: throws
 * when a signature is there but not good, or when it is missing and signing.required is set;
 * returns what to print otherwise.
 */
export async function checkReleaseSignature(
  o: ReleaseRecordsAt & { project?: Project; skipSignature?: boolean },
): Promise<ReleaseSignature> {
  if (o.skipSignature) {
    return {
      result: { status: 'error', reason: 'not checked' },
      summary: `release ${o.name}: signature NOT CHECKED (--skip-signature)`,
    };
  }
  const required = o.project?.config.signing.required ?? false;
  const where = o.mirror ?? 'the store';
  const result = await releaseSignatureState({ ...o, keysDir: o.project ? keysDir(o.project) : undefined });
  if (result.status === 'good') return { result, summary: `release ${o.name}: ${describeSignature(result)}` };
  if (result.status === 'unsigned' && o.release.signed_by) {
    // manifest.yaml says who signed it: missing signature files are a removed signature, not "unsigned".
    throw signatureError(`release ${o.name} in ${where}`, {
      status: 'error',
      reason: `manifest.yaml records it signed by ${o.release.signed_by}, but its signature files are missing`,
    });
  }
  if (result.status === 'unsigned' && !required) {
    return { result, summary: `release ${o.name} is unsigned` };
  }
  // Signed but not checkable here (no keys/, a doubtful trust root) fails like a bad signature.
  throw signatureError(`release ${o.name} in ${where}`, result);
}
