/**
 * manifest.json: the builds of one image, in Packer's manifest post-processor shape, so existing
 * tooling that reads Packer manifests keeps working. Updated under a lock, written atomically.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { INPUT_CAPS, jsonErrorWhere, readInputText } from '../fsx/input.js';
import { writeFileAtomically } from './atomic.js';
import { zodIssuesToConfigIssues } from './load.js';
import { acquireLock } from './lock.js';

export const BuildCustomDataSchema = z
  .object({
    release: z.string().optional(),
    artifact: z
      .string()
      .regex(
        /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*$/,
        'must be an artifact name (letters, digits, ".", "_", "-"; no "/" or "..")',
      )
      .describe('the artifact name: store/builds/<artifact>.qcow2'),
    git_branch: z.string(),
    git_commit: z.string(),
    git_dirty: z.boolean(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    package_count: z.number().int().nonnegative(),
    duration_s: z.number().nonnegative(),
    accelerator: z.enum(['kvm', 'tcg']).or(z.string()),
    osbake_version: z.string(),
    patch_bundle: z
      .object({
        id: z.string().min(1).describe('bundle id (also the artifact name in a release)'),
        path: z
          .string()
          .min(1)
          .describe('bundle file relative to the store root: repos/<Distro>/<id>.tar.zst'),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        size: z.number().int().nonnegative(),
        packages: z.number().int().nonnegative().describe('number of packages in the bundle'),
      })
      .optional()
      .describe('the security-patch bundle this build created (--create-patches)'),
    applied_patch_bundle: z
      .object({ id: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) })
      .optional()
      .describe('the patch bundle this build applied (--release R with a recorded bundle)'),
    builder: z.string().optional().describe('the builder that ran: chroot, qemu, libvirt'),
    test: z
      .object({
        skipped: z.boolean().optional().describe('--no-test: the build was not booted'),
        passed: z.boolean().optional(),
        firmware: z.string().optional(),
        accelerator: z.string().optional(),
        duration_s: z.number().optional(),
        failed_units: z.array(z.string()).optional(),
        checks: z.array(z.object({ name: z.string(), passed: z.boolean() }).passthrough()).optional(),
      })
      .passthrough()
      .optional()
      .describe("the boot test's result (osbake test after post-process)"),
  })
  .catchall(z.unknown());

export const BuildEntrySchema = z.object({
  name: z.string(),
  builder_type: z.string(),
  build_time: z.number().int(),
  files: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative() })).nullable(),
  artifact_id: z.string(),
  packer_run_uuid: z.string(),
  custom_data: BuildCustomDataSchema,
});

export const BuildsManifestSchema = z.object({
  builds: z.array(BuildEntrySchema),
  last_run_uuid: z.string(),
});

export type BuildEntry = z.infer<typeof BuildEntrySchema>;
export type BuildsManifest = z.infer<typeof BuildsManifestSchema>;

export async function readBuildsManifest(file: string): Promise<BuildsManifest> {
  let text: string;
  try {
    text = await readInputText(file, { what: 'manifest.json', maxBytes: INPUT_CAPS.manifest });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { builds: [], last_run_uuid: '' };
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `invalid JSON (${jsonErrorWhere(err)})` }]);
  }
  const result = BuildsManifestSchema.safeParse(data);
  if (!result.success) throw new ConfigError(zodIssuesToConfigIssues(file, result.error.issues));
  return result.data;
}

/** Run fn with an exclusive lock on file (which need not exist yet). */
export async function withManifestLock<T>(
  file: string,
  fn: () => Promise<T>,
  onWait: (message: string) => void = (m) => process.stderr.write(`osbake: ${m}\n`),
): Promise<T> {
  const release = await acquireLock(file, { what: file, waitMs: 60_000, staleMs: 15_000, onWait });
  try {
    return await fn();
  } finally {
    await release();
  }
}

export async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  await writeFileAtomically(file, `${JSON.stringify(data, null, 2)}\n`);
}

/** Append one build to manifest.json under a lock; the file is replaced atomically. */
export async function appendBuild(file: string, entry: BuildEntry): Promise<void> {
  BuildEntrySchema.parse(entry);
  await withManifestLock(file, async () => {
    const manifest = await readBuildsManifest(file);
    manifest.builds.push(entry);
    manifest.last_run_uuid = entry.packer_run_uuid;
    await writeJsonAtomic(file, manifest);
  });
}

/** One build as Packer's manifest post-processor records it (osbake's own builders write the same shape). */
export interface PackerManifestBuild {
  name: string;
  builder_type: string;
  build_time: number;
  files: { name: string; size: number }[] | null;
  artifact_id: string;
  packer_run_uuid: string;
}

/** The last build of the run recorded in Packer's own manifest post-processor output. */
export async function readPackerManifest(file: string): Promise<PackerManifestBuild> {
  const data = JSON.parse(await readFile(file, 'utf8')) as {
    builds: PackerManifestBuild[];
    last_run_uuid: string;
  };
  const build = data.builds.filter((b) => b.packer_run_uuid === data.last_run_uuid).at(-1);
  if (!build) throw new Error(`${file} records no build of run ${data.last_run_uuid}`);
  return build;
}

/** osbake rebuild's verdict on a build (custom_data.reproducible). */
export interface Reproducible {
  identical: boolean;
  checked: string;
  level: string;
}

/** custom_data.reproducible as the API shows it (pure); null when never rebuilt or malformed. */
export function reproducibleOf(v: unknown): Reproducible | null {
  if (!v || typeof v !== 'object') return null;
  const r = v as Record<string, unknown>;
  if (typeof r.identical !== 'boolean' || typeof r.checked !== 'string') return null;
  return {
    identical: r.identical,
    checked: r.checked,
    level: typeof r.level === 'string' ? r.level : 'bytes',
  };
}

/**
 * The build's file in the store's builds/, as its record names it (files[0]: a disk image's
 * .qcow2, an installer's .raw); <artifact>.qcow2 for records that name none (pure).
 */
export function buildFileOf(build: Pick<BuildEntry, 'files' | 'custom_data'>): string {
  return build.files?.[0]?.name ?? `${build.custom_data.artifact}.qcow2`;
}
