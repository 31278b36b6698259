/**
 * rpm patch bundles (Rocky/RHEL images), host side. dnf runs in a private installroot whose rpmdb
 * is the image's own (copied from the image, or seeded from its `rpm -qa` NEVRA list), confined to
 * the given repositories: `dnf upgrade --downloadonly [--security]` picks exactly the upgrades and
 * the packages they newly need, as dnf on the image would. The offline repository gets createrepo_c
 * metadata plus the advisories that concern its packages and the sources' modules.yaml.
 *
 * The plan from dnf's answer (old → new, advisories, what to keep of updateinfo) is pure.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize, sha256File } from '../artifacts/checksum.js';
import { capture } from '../exec/run.js';
import type { SigningKey } from '../signing/project-keys.js';
import type { PlannedPatch } from './apt.js';
import {
  type BundleAdvisory,
  type BundleManifest,
  bundleManifest,
  type CreatedBundle,
  packBundle,
  signRpmRepo,
  writeBundleMetadata,
  writeRpmRepoIndex,
} from './bundle.js';
import {
  defaultPlatformId,
  type InstalledRpms,
  type Io,
  makeDnfRoot,
  REPOQUERY_FORMAT,
  type RpmUpdatePolicy,
  runDnf,
  seedRpmdb,
  upgradeCommand,
} from './rpm-dnf.js';
import { type RpmRepo, readRepoMetadata } from './rpm-repo.js';
import {
  compareEvr,
  formatEvr,
  formatNevra,
  parseRpmQuery,
  RPM_QUERY_FORMAT,
  type RpmPackage,
} from './rpm-version.js';
import { type Advisory, advisoriesFixedBy, filterUpdateinfo, parseUpdateinfo } from './updateinfo.js';

export type { InstalledRpms, RpmUpdatePolicy } from './rpm-dnf.js';
export type { RpmRepo } from './rpm-repo.js';

export interface RpmPatch extends PlannedPatch {
  advisories: string[];
}

export interface RpmPatchPlan {
  patches: RpmPatch[];
  advisories: BundleAdvisory[];
  /** advisory id → name.arch of the bundle's packages it lists (what updateinfo.xml keeps). */
  keep: Map<string, Set<string>>;
}

/**
 * From what dnf downloaded, the bundle's list: old → new per package (the newest installed one of
 * the same name and arch; none for a newly needed package), origin repo, and fixed advisories.
 */
export function planRpmPatches(
  installed: readonly RpmPackage[],
  downloaded: readonly RpmPackage[],
  origins: ReadonlyMap<string, string>,
  advisories: readonly Advisory[],
): RpmPatchPlan {
  const newest = new Map<string, RpmPackage>();
  for (const p of installed) {
    const k = `${p.name}.${p.arch}`;
    const cur = newest.get(k);
    if (!cur || compareEvr(p, cur) > 0) newest.set(k, p);
  }
  const keep = new Map<string, Set<string>>();
  const details = new Map<string, BundleAdvisory>();
  const patches = [...downloaded]
    .sort((a, b) => a.name.localeCompare(b.name) || a.arch.localeCompare(b.arch))
    .map((p): RpmPatch => {
      const key = `${p.name}.${p.arch}`;
      const old = newest.get(key);
      const fixed = advisoriesFixedBy({ name: p.name, arch: p.arch, old, new: p }, advisories);
      for (const a of fixed) {
        keep.set(a.id, (keep.get(a.id) ?? new Set()).add(key));
        details.set(a.id, { id: a.id, type: a.type, ...(a.severity ? { severity: a.severity } : {}) });
      }
      return {
        name: p.name,
        ...(old ? { oldVersion: formatEvr(old) } : {}),
        newVersion: formatEvr(p),
        arch: p.arch,
        origin: origins.get(formatNevra(p)) ?? 'unknown',
        advisories: fixed.map((a) => a.id),
      };
    });
  return { patches, advisories: [...details.values()].sort((a, b) => a.id.localeCompare(b.id)), keep };
}

/** Lines of `dnf repoquery --qf '%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\t%{repoid}'` → NEVRA → repo (pure). */
export function parseOrigins(output: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of output.split('\n')) {
    const [name, epoch, version, release, arch, repo] = line.trim().split('\t');
    if (!name || !version || !release || !arch || !repo || !/^\d+$/.test(epoch ?? '')) continue;
    const k = formatNevra({ name, epoch: Number(epoch), version, release, arch });
    if (!out.has(k)) out.set(k, repo);
  }
  return out;
}

export interface CreateRpmBundleOptions extends Io {
  installed: InstalledRpms;
  repos: readonly RpmRepo[];
  /** Scratch directory: dnf/, download/, metadata/ and bundle/ in it are replaced; <id>.tar.zst is written here. */
  workDir: string;
  id: string;
  image: string;
  artifact: string;
  /** For bundle.json: distro name and suite (e.g. rocky, 8). */
  distro: string;
  suite: string;
  /** dnf $releasever (default: suite). */
  releasever?: string;
  /** dnf module_platform_id (default platform:el<major of releasever>). */
  platformId?: string;
  /** Store directory under repos/ (e.g. Rocky8). */
  repoDirName: string;
  policy?: RpmUpdatePolicy;
  /** Sign repodata/repomd.xml with it (repomd.xml.asc), for dnf's repo_gpgcheck=1. */
  signingKey?: SigningKey;
}

/** dnf upgrade --downloadonly in the image's rpmdb copy: the downloaded packages and their repositories. */
async function downloadUpdates(
  r: Awaited<ReturnType<typeof makeDnfRoot>>,
  policy: RpmUpdatePolicy,
  dl: string,
  installedCount: number,
  io: Io,
) {
  await rm(dl, { recursive: true, force: true });
  io.onDetail?.(
    `dnf upgrade --downloadonly${policy === 'security' ? ' --security' : ''} (${installedCount} installed)`,
  );
  await runDnf(r, upgradeCommand(policy, dl), io, (line) => {
    const m = /^\((\d+\/\d+)\): (\S+)/.exec(line);
    if (m) io.onDetail?.(`downloading ${m[1]} ${m[2]}`);
  });
  const files = (await readdir(dl).catch(() => [] as string[])).filter((f) => f.endsWith('.rpm')).sort();
  const downloaded = files.length
    ? parseRpmQuery(
        await capture(
          ['rpm', '-qp', '--nosignature', '--qf', RPM_QUERY_FORMAT, ...files.map((f) => join(dl, f))],
          { ...io, tag: 'rpm' },
        ),
      )
    : [];
  const origins = downloaded.length
    ? parseOrigins(
        await runDnf(r, ['repoquery', '-q', '--qf', REPOQUERY_FORMAT, ...downloaded.map(formatNevra)], io),
      )
    : new Map<string, string>();
  return { files, downloaded, origins };
}

/** Each repository's updateinfo (advisories) and modules metadata, where it has them. */
async function repoAdvisories(o: CreateRpmBundleOptions, meta: string) {
  const updateinfos: { repo: string; xml: string }[] = [];
  const modules: string[] = [];
  for (const repo of o.repos) {
    const u = await readRepoMetadata(repo, 'updateinfo', meta, o.log, o.signal);
    if (u !== undefined) updateinfos.push({ repo: repo.id, xml: u });
    const m = await readRepoMetadata(repo, 'modules', meta, o.log, o.signal);
    if (m !== undefined) modules.push(m.endsWith('\n') ? m : `${m}\n`);
  }
  return { updateinfos, modules };
}

/** Make an rpm patch bundle: the entry point the build's create-patches step calls for rpm distros. */
export async function createRpmBundle(
  o: CreateRpmBundleOptions,
): Promise<CreatedBundle & { manifest: BundleManifest }> {
  const io: Io = { log: o.log, signal: o.signal, onDetail: o.onDetail };
  const policy = o.policy ?? 'security';
  const r = await makeDnfRoot(
    join(o.workDir, 'dnf'),
    o.repos,
    o.releasever ?? o.suite,
    o.platformId ?? defaultPlatformId(o.releasever ?? o.suite),
  );
  const installed = await seedRpmdb(r, o.installed, io);
  const dl = join(o.workDir, 'download');
  const { files, downloaded, origins } = await downloadUpdates(r, policy, dl, installed.length, io);
  const { updateinfos, modules } = await repoAdvisories(o, join(o.workDir, 'metadata'));
  const advisories = updateinfos.flatMap((u) => parseUpdateinfo(u.xml, `updateinfo.xml of ${u.repo}`));
  const plan = planRpmPatches(installed, downloaded, origins, advisories);

  const dir = join(o.workDir, 'bundle');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'Packages'), { recursive: true });
  for (const f of files) await rename(join(dl, f), join(dir, 'Packages', f));
  io.onDetail?.('createrepo_c, modifyrepo_c (updateinfo, modules)');
  const updateinfo =
    updateinfos.length > 0
      ? filterUpdateinfo(
          updateinfos.map((u) => u.xml),
          plan.keep,
        )
      : undefined;
  await writeRpmRepoIndex(
    dir,
    {
      ...(updateinfo !== undefined ? { updateinfo } : {}),
      ...(modules.length > 0 ? { modulesYaml: modules.join('') } : {}),
    },
    o.log,
    o.signal,
  );
  const manifest = bundleManifest({
    id: o.id,
    format: 'rpm',
    distro: o.distro,
    suite: o.suite,
    image: o.image,
    artifact: o.artifact,
    patches: plan.patches,
    advisories: plan.advisories,
  });
  if (o.signingKey) {
    io.onDetail?.(`signing repomd.xml with ${o.signingKey.fingerprint}`);
    await signRpmRepo(dir, o.signingKey, o.log);
  }
  await writeBundleMetadata(dir, manifest);
  const file = join(o.workDir, `${o.id}.tar.zst`);
  io.onDetail?.('packing the bundle');
  await packBundle(dir, file, o.log, o.signal);
  for (const d of ['dnf', 'download', 'metadata'])
    await rm(join(o.workDir, d), { recursive: true, force: true });
  return {
    id: o.id,
    file,
    listFile: join(dir, 'PATCHES.txt'),
    path: `repos/${o.repoDirName}/${o.id}.tar.zst`,
    sha256: await sha256File(file),
    size: await fileSize(file),
    packages: plan.patches.length,
    manifest,
  };
}
