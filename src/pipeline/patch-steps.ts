/** Build steps for patch bundles: apply a release's bundle (before packer), create one (after). */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize, sha256File } from '../artifacts/checksum.js';
import { fetchArtifactToStore } from '../artifacts/fetch.js';
import type { ImageDefinition } from '../config/image.js';
import { debianSources } from '../distros/debian.js';
import { createRockyPatchBundle, rockyPatchRepos } from '../distros/rocky.js';
import { UserError } from '../errors.js';
import {
  aptDownload,
  aptSimulateUpgrade,
  aptUpdate,
  DEBIAN_KEYRING,
  makeAptRoot,
  parseAptRemovals,
  parseAptSimulation,
} from '../patches/apt.js';
import {
  bundleManifest,
  packBundle,
  unpackBundle,
  writeAptRepoIndex,
  writeBundleMetadata,
} from '../patches/bundle.js';
import { findReleasePatchBundle } from '../patches/release-bundle.js';
import { startRepoServer } from '../patches/repo-server.js';
import type { BuildContext } from './build-steps.js';
import type { Step } from './step.js';

/**
 * With a patch bundle (made or applied) the vanilla disk comes from the release suite alone, so the
 * image's patch level is the bundle's and not the date the vanilla disk was cached.
 */
export function withReleaseChannelOnly(image: ImageDefinition): ImageDefinition {
  if (image.config.vanilla.channels.join() === 'release') return image;
  return {
    ...image,
    config: { ...image.config, vanilla: { ...image.config.vanilla, channels: ['release'] } },
  };
}

/**
 * --release R: verify and serve R's patch bundle to the build VM. --create-patches: bootstrap from
 * the release suite alone, so that the bundle holds every update the release suite lacks.
 */
export const applyPatches: Step<BuildContext> = {
  name: 'patch-source',
  title: "serving the release's patch bundle",
  async run(ctx) {
    if (ctx.req.createPatches) {
      ctx.image = withReleaseChannelOnly(ctx.image);
      ctx.progress.say(
        `--create-patches: vanilla disk from ${ctx.image.config.suite} alone; updates and security go into the bundle`,
      );
      return;
    }
    if (!ctx.plan.release) return;
    const ref = await findReleasePatchBundle(ctx.project, ctx.plan.release);
    if (!ref) {
      ctx.progress.say(`release ${ctx.plan.release}: no patch bundle in manifest.yaml, building without one`);
      return;
    }
    const file = join(ctx.project.storeDir, ref.path);
    const mirror = ctx.project.config.mirrors.osbake;
    if (!existsSync(file) && mirror) {
      ctx.progress.detail(`fetching ${ref.path} from ${mirror}`);
      await fetchArtifactToStore(mirror, ref, file, { signal: ctx.signal });
      ctx.progress.say(`fetched patch bundle ${ref.name} from ${mirror}`);
    }
    if (!existsSync(file)) {
      throw new UserError(
        'E_BUNDLE_MISSING',
        `patch bundle ${ref.name} of release ${ctx.plan.release} is not in the store (${file})`,
        'set mirrors.osbake in osbake.yaml to fetch it from a mirror, or copy it into the store',
      );
    }
    ctx.progress.detail(`verifying ${ref.name}`);
    const dir = join(ctx.plan.workDir, 'patch-repo');
    const m = await unpackBundle(file, ref.sha256, dir, ctx.log, ctx.signal);
    ctx.image = withReleaseChannelOnly(ctx.image);
    ctx.appliedBundle = { id: m.id, sha256: ref.sha256, packages: m.packages.length };
    if (ctx.hypervisor) {
      // A VM on a remote hypervisor cannot reach a server on this machine; Ansible copies the
      // repository into it over its SSH connection (through the bastion, if any).
      ctx.patchRepoDir = dir;
      ctx.progress.say(
        `applying patch bundle ${m.id} (${m.packages.length} packages), copied into the VM by Ansible`,
      );
      return;
    }
    const server = await startRepoServer(dir, (line) => ctx.log.info({ src: 'patch-repo' }, line));
    ctx.patchServer = server;
    ctx.patchRepoUrl = server.guestUrl;
    ctx.progress.say(`applying patch bundle ${m.id} (${m.packages.length} packages) from ${server.guestUrl}`);
  },
  async cleanup(ctx) {
    await ctx.patchServer?.close();
  },
};

/** --create-patches: every newer package in the updates/security channels, as an offline repo. */
export const createPatches: Step<BuildContext> = {
  name: 'create-patches',
  title: 'creating the security-patch bundle',
  async run(ctx) {
    if (!ctx.req.createPatches) return;
    const { plan, image, project, log, signal } = ctx;
    if (image.config.distro === 'rocky') {
      const id = `${plan.artifact}-patches`;
      ctx.createdBundle = await createRockyPatchBundle({
        installedFile: join(plan.workDir, ctx.distro.packageState.file),
        repos: rockyPatchRepos(project),
        workDir: join(plan.workDir, 'rpm-bundle'),
        id,
        image: image.name,
        artifact: plan.artifact,
        suite: image.config.suite,
        repoDirName: ctx.distro.repoDirName(image),
        log,
        signal,
        onDetail: (t) => ctx.progress.detail(t),
      });
      ctx.progress.say(`patch bundle ${id}: ${ctx.createdBundle.packages} package(s)`);
      return;
    }
    const status = join(plan.workDir, 'dpkg-status');
    if (!existsSync(status)) {
      throw new UserError(
        'E_NO_DPKG_STATUS',
        'the image did not produce its dpkg status',
        'the template must download /var/lib/dpkg/status to the dpkg_status_file variable',
      );
    }
    const sources = debianSources(
      project,
      image.config.suite,
      ['release', 'updates', 'security'],
      `signed-by=${DEBIAN_KEYRING}`,
    );
    const root = await makeAptRoot(join(plan.workDir, 'apt'), status, sources);
    ctx.progress.detail('apt-get update (release, updates, security)');
    await aptUpdate(root, log, signal);
    const sim = await aptSimulateUpgrade(root, log, signal);
    const removals = parseAptRemovals(sim);
    if (removals.length > 0) {
      throw new UserError(
        'E_PATCH_REMOVALS',
        `upgrading the image would remove ${removals.join(', ')}`,
        'resolve the conflict in the image definition first',
      );
    }
    const patches = parseAptSimulation(sim);
    const id = `${plan.artifact}-patches`;
    const dir = join(plan.workDir, 'bundle');
    ctx.progress.detail(`downloading ${patches.length} package(s)`);
    await aptDownload(root, patches, join(dir, 'pool'), log, signal);
    await writeAptRepoIndex(dir, id, log, signal);
    const manifest = bundleManifest({
      id,
      distro: image.config.distro,
      suite: image.config.suite,
      image: image.name,
      artifact: plan.artifact,
      patches,
    });
    await writeBundleMetadata(dir, manifest);
    const file = join(plan.workDir, `${id}.tar.zst`);
    ctx.progress.detail('packing the bundle');
    await packBundle(dir, file, log, signal);
    ctx.createdBundle = {
      id,
      file,
      listFile: join(dir, 'PATCHES.txt'),
      path: `repos/${ctx.distro.repoDirName(image)}/${id}.tar.zst`,
      sha256: await sha256File(file),
      size: await fileSize(file),
      packages: patches.length,
    };
    await rm(join(plan.workDir, 'apt'), { recursive: true, force: true });
    ctx.progress.say(
      `patch bundle ${id}: ${patches.length} package(s), ${(ctx.createdBundle.size / 2 ** 20).toFixed(1)} MiB`,
    );
  },
};
