/**
 * Security-patch bundles: an offline repository (apt: pool/ + Packages + Release with hashes; rpm:
 * Packages/ + createrepo_c repodata with updateinfo and modules) with
 * a human-readable list and a machine-readable bundle.json, packed as a zstd tarball with a
 * .sha256. Plan (what to download) is pure; create/pack/unpack write.
 */

import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { z } from 'zod';
import { sha256File } from '../artifacts/checksum.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
import { clearSign, detachSign } from '../signing/gpg.js';
import type { SigningKey } from '../signing/project-keys.js';
import type { PlannedPatch } from './apt.js';

export const BUNDLE_FILE = 'bundle.json';
export const BUNDLE_LIST = 'PATCHES.txt';

export const BundleManifestSchema = z.object({
  id: z.string(),
  format: z.enum(['apt', 'rpm']),
  distro: z.string(),
  suite: z.string(),
  created: z.string(),
  base: z.object({ image: z.string(), artifact: z.string() }),
  packages: z.array(
    z.object({
      name: z.string(),
      oldVersion: z.string().optional(),
      newVersion: z.string(),
      arch: z.string(),
      origin: z.string(),
      advisories: z.array(z.string()).default([]),
    }),
  ),
  /** Details of the advisories that packages[].advisories name (rpm bundles; absent in older bundles). */
  advisories: z
    .array(z.object({ id: z.string(), type: z.string(), severity: z.string().optional() }))
    .optional(),
});

export type BundleManifest = z.infer<typeof BundleManifestSchema>;
export type BundleAdvisory = NonNullable<BundleManifest['advisories']>[number];

/** What creating a bundle hands to the build (ctx.createdBundle): the packed file and its identity. */
export interface CreatedBundle {
  id: string;
  /** The packed .tar.zst in the work directory. */
  file: string;
  /** PATCHES.txt beside it (published as <id>.txt). */
  listFile: string;
  /** Where it goes in the store: repos/<distro dir>/<id>.tar.zst. */
  path: string;
  sha256: string;
  size: number;
  packages: number;
}

/** The human-readable list: package, old → new, origin, advisories. */
export function formatPatchList(m: BundleManifest): string {
  const rows = m.packages.map((p) => [
    p.name,
    `${p.oldVersion ?? '(new)'} → ${p.newVersion}`,
    p.origin,
    p.advisories.join(' '),
  ]);
  const header = ['PACKAGE', 'VERSION (installed → patched)', 'FROM', 'ADVISORIES'];
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c))
      .join('  ')
      .trimEnd();
  const advisories = (m.advisories ?? []).map(
    (a) => `# ${a.id}  ${a.type}${a.severity ? ` (${a.severity})` : ''}`,
  );
  return [
    `# ${m.id}: ${m.packages.length} package(s) for ${m.distro} ${m.suite}, made ${m.created}`,
    `# from ${m.base.artifact}`,
    line(header),
    ...rows.map(line),
    ...(advisories.length > 0 ? ['', `# ${advisories.length} advisory(ies):`, ...advisories] : []),
    '',
  ].join('\n');
}

export function bundleManifest(o: {
  id: string;
  distro: string;
  suite: string;
  image: string;
  artifact: string;
  patches: (PlannedPatch & { advisories?: string[] })[];
  created?: Date;
  /** Repository format (default apt). */
  format?: BundleManifest['format'];
  advisories?: BundleAdvisory[];
}): BundleManifest {
  return {
    id: o.id,
    format: o.format ?? 'apt',
    distro: o.distro,
    suite: o.suite,
    created: (o.created ?? new Date()).toISOString(),
    base: { image: o.image, artifact: o.artifact },
    packages: o.patches.map((p) => ({ ...p, advisories: p.advisories ?? [] })),
    ...(o.advisories ? { advisories: o.advisories } : {}),
  };
}

/**
 * Sign an apt repository's Release with the project key: InRelease (clear-signed) and Release.gpg
 * (detached), so apt checks it with signed-by= instead of trusting it.
 */
export async function signAptRepo(dir: string, key: SigningKey, log: Logger): Promise<void> {
  await clearSign(key.home, key.fingerprint, join(dir, 'Release'), join(dir, 'InRelease'), log);
  await detachSign(key.home, key.fingerprint, join(dir, 'Release'), join(dir, 'Release.gpg'), log);
}

/** Sign an rpm repository's repomd.xml (repodata/repomd.xml.asc), for dnf's repo_gpgcheck=1. */
export async function signRpmRepo(dir: string, key: SigningKey, log: Logger): Promise<void> {
  const repomd = join(dir, 'repodata', 'repomd.xml');
  await detachSign(key.home, key.fingerprint, repomd, `${repomd}.asc`, log);
}

/** Does an unpacked bundle carry a repository signature (apt InRelease/Release.gpg, rpm repomd.xml.asc)? */
export function bundleIsSigned(dir: string): boolean {
  return ['InRelease', 'Release.gpg', 'repodata/repomd.xml.asc'].some((f) => existsSync(join(dir, f)));
}

/** Index pool/*.deb as a flat apt repository ("deb [signed-by=KEY] URL ./", or trusted=yes unsigned). */
export async function writeAptRepoIndex(
  dir: string,
  id: string,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  await mkdir(join(dir, 'pool'), { recursive: true });
  const packages = await capture(['apt-ftparchive', 'packages', 'pool'], {
    log,
    signal,
    cwd: dir,
    tag: 'apt-ftparchive',
  });
  await writeFile(join(dir, 'Packages'), packages ? `${packages}\n` : '');
  await pipeline(
    createReadStream(join(dir, 'Packages')),
    createGzip({ level: 9 }),
    createWriteStream(join(dir, 'Packages.gz')),
  );
  // Release lists the hashes of the indices; written outside the directory, then moved in.
  const release = await capture(
    [
      'apt-ftparchive',
      '-o',
      'APT::FTPArchive::Release::Origin=osbake',
      '-o',
      `APT::FTPArchive::Release::Label=${id}`,
      '-o',
      `APT::FTPArchive::Release::Suite=${id}`,
      '-o',
      'APT::FTPArchive::Release::Description=osbake security-patch bundle',
      'release',
      '.',
    ],
    { log, signal, cwd: dir, tag: 'apt-ftparchive' },
  );
  const tmp = `${dir}.Release.tmp`;
  await writeFile(tmp, `${release}\n`);
  await rename(tmp, join(dir, 'Release'));
}

/**
 * Index Packages/*.rpm as an rpm repository (createrepo_c), then add the advisories
 * (updateinfo.xml) and the module metadata (modules.yaml) with modifyrepo_c, as dnf reads them.
 */
export async function writeRpmRepoIndex(
  dir: string,
  extra: { updateinfo?: string; modulesYaml?: string },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  await mkdir(join(dir, 'Packages'), { recursive: true });
  await rm(join(dir, 'repodata'), { recursive: true, force: true });
  // No sqlite databases: dnf reads the XML metadata.
  await run(['createrepo_c', '--quiet', '--no-database', dir], {
    log,
    signal,
    tag: 'createrepo_c',
  });
  const meta = await mkdtemp(join(dir, '..', '.repo-meta-'));
  try {
    for (const [type, text] of [
      ['updateinfo', extra.updateinfo],
      ['modules', extra.modulesYaml],
    ] as const) {
      if (text === undefined) continue;
      const file = join(meta, type === 'modules' ? 'modules.yaml' : 'updateinfo.xml');
      await writeFile(file, text);
      await run(['modifyrepo_c', `--mdtype=${type}`, '--compress-type=gz', file, join(dir, 'repodata')], {
        log,
        signal,
        tag: 'modifyrepo_c',
      });
    }
  } finally {
    await rm(meta, { recursive: true, force: true });
  }
}

export async function writeBundleMetadata(dir: string, m: BundleManifest): Promise<void> {
  await writeFile(join(dir, BUNDLE_FILE), `${JSON.stringify(m, null, 2)}\n`);
  await writeFile(join(dir, BUNDLE_LIST), formatPatchList(m));
}

/** Pack a bundle directory reproducibly (sorted, fixed owners and times) as .tar.zst. */
export async function packBundle(dir: string, out: string, log: Logger, signal: AbortSignal): Promise<void> {
  await run(
    [
      'tar',
      '--zstd',
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-cf',
      out,
      '-C',
      dir,
      '.',
    ],
    { log, signal, tag: 'tar' },
  );
}

/** Verify a bundle's SHA-256 (refusing on mismatch), unpack it, and read its bundle.json. */
export async function unpackBundle(
  file: string,
  expectedSha256: string,
  dest: string,
  log: Logger,
  signal: AbortSignal,
): Promise<BundleManifest> {
  const got = await sha256File(file);
  if (got !== expectedSha256) {
    throw new UserError(
      'E_BUNDLE_CHECKSUM',
      `patch bundle ${file} has sha256 ${got}, but manifest.yaml records ${expectedSha256}`,
      'the bundle is corrupt or was replaced: fetch it again from the mirror, or re-record the release with osbake release --force',
    );
  }
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  try {
    await run(['tar', '--zstd', '-xf', file, '-C', dest, '--no-same-owner'], { log, signal, tag: 'tar' });
  } catch (err) {
    throw new UserError(
      'E_BUNDLE_CORRUPT',
      `patch bundle ${file} cannot be unpacked: ${String(err)}`,
      'fetch it again',
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(await readFile(join(dest, BUNDLE_FILE), 'utf8'));
  } catch {
    throw new UserError(
      'E_BUNDLE_CORRUPT',
      `patch bundle ${file} has no readable ${BUNDLE_FILE}`,
      'it was not made by osbake build --create-patches',
    );
  }
  const parsed = BundleManifestSchema.safeParse(data);
  if (!parsed.success) {
    throw new UserError(
      'E_BUNDLE_CORRUPT',
      `patch bundle ${file}: ${BUNDLE_FILE} is invalid (${parsed.error.issues[0]?.message})`,
      'rebuild the bundle',
    );
  }
  return parsed.data;
}
