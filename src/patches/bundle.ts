/**
 * Security-patch bundles: an offline repository (apt: pool/ + Packages + Release with hashes) with
 * a human-readable list and a machine-readable bundle.json, packed as a zstd tarball with a
 * .sha256. Plan (what to download) is pure; create/pack/unpack write.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { z } from 'zod';
import { sha256File } from '../artifacts/checksum.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';
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

/** The human-readable list: package, old → new, origin, advisories. */
export function formatPatchList(m: BundleManifest): string {
  const rows = m.packages.map((p) => [
    p.name,
    `${p.oldVersion ?? '(new)'} → ${p.newVersion}`,
    p.origin,
    p.advisories.join(' '),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(8, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c))
      .join('  ')
      .trimEnd();
  return [
    `# ${m.id}: ${m.packages.length} package(s) for ${m.distro} ${m.suite}, made ${m.created}`,
    `# from ${m.base.artifact}`,
    line(['PACKAGE', 'VERSION (installed → patched)', 'FROM', 'ADVISORIES']),
    ...rows.map(line),
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

/** Index pool/*.deb as a flat apt repository ("deb [trusted=yes] URL ./"). */
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
