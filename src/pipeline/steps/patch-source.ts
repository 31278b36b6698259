/**
 * patch-source: --release R with a patch bundle: verify it, unpack it and make it reachable from
 * the build the way the builder says (an HTTP server on this machine, or the directory itself).
 * --create-patches: bootstrap from the release suite alone, so the bundle holds every update.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchArtifactToStore } from '../../artifacts/fetch.js';
import type { ImageDefinition } from '../../config/image.js';
import { UserError } from '../../errors.js';
import { bundleIsSigned, unpackBundle } from '../../patches/bundle.js';
import { findReleasePatchBundle } from '../../patches/release-bundle.js';
import { startRepoServer } from '../../patches/repo-server.js';
import { requireSecretKey } from '../../signing/gpg.js';
import { keysDir, signingKeyOf } from '../../signing/project-keys.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

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

function useImage(ctx: BuildContext, image: ImageDefinition): void {
  ctx.image = image;
  ctx.job.image = image;
}

/** Where the build finds the keys a signed bundle is checked with, beside the repository. */
export const TRUST_KEYRING = 'osbake-keyring.asc';

/**
 * What a build does with a bundle (pure): a signed bundle is checked by apt/dnf against keys/, and
 * refused when keys/ is empty (a signature nothing can check is a doubt, never "not checked"); an
 * unsigned one is refused under signing.required, else trusted (its checksum is the release's).
 */
export function bundleTrust(
  signed: boolean,
  haveKeys: boolean,
  required: boolean,
): 'check' | 'trust-unsigned' | 'refuse-unsigned' | 'refuse-no-keys' {
  if (!signed) return required ? 'refuse-unsigned' : 'trust-unsigned';
  return haveKeys ? 'check' : 'refuse-no-keys';
}

/**
 * A signed bundle is checked by apt/dnf inside the build against the repository's keys/: they are
 * put beside the unpacked repository as osbake-keyring.asc (the image's patches role then uses
 * signed-by= / repo_gpgcheck=1). Never a keyring the bundle brings itself.
 */
async function placeTrustKeyring(ctx: BuildContext, dir: string, id: string): Promise<void> {
  const target = join(dir, TRUST_KEYRING);
  await rm(target, { force: true });
  const keys = await armoredKeys(keysDir(ctx.project));
  switch (bundleTrust(bundleIsSigned(dir), keys !== '', ctx.project.config.signing.required)) {
    case 'refuse-unsigned':
      throw new UserError(
        'E_UNSIGNED',
        `patch bundle ${id} is unsigned and signing.required is set`,
        'make the bundle again with a signing key configured (osbake build --create-patches)',
      );
    case 'trust-unsigned':
      ctx.progress.say(`patch bundle ${id} is unsigned: apt/dnf trust it (its checksum is the release's)`);
      return;
    case 'refuse-no-keys':
      throw new UserError(
        'E_SIGNATURE',
        `patch bundle ${id} is signed, but keys/ holds no public key to check it with`,
        "add the signer's public key to keys/ (osbake keys list shows the project's)",
      );
    case 'check':
      await writeFile(target, keys);
      ctx.progress.say(`patch bundle ${id} is signed: apt/dnf check it inside the build against keys/`);
  }
}

/** Every armored key file of keys/, concatenated ('' when there is none). */
async function armoredKeys(dir: string): Promise<string> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.asc')).sort();
  const parts: string[] = [];
  for (const f of files) parts.push((await readFile(join(dir, f), 'utf8')).trim());
  return parts.length ? `${parts.join('\n')}\n` : '';
}

export const patchSource: Step<BuildContext> = {
  name: 'patch-source',
  title: "serving the release's patch bundle",
  async run(ctx) {
    if (ctx.req.createPatches) {
      // The bundle is signed at the end of the build: a missing secret key is said now, not then.
      const key = signingKeyOf(ctx.project);
      if (key) await requireSecretKey(key.home, key.fingerprint, ctx.log);
      useImage(ctx, withReleaseChannelOnly(ctx.image));
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
    await placeTrustKeyring(ctx, dir, m.id);
    useImage(ctx, withReleaseChannelOnly(ctx.image));
    ctx.appliedBundle = { id: m.id, sha256: ref.sha256, packages: m.packages.length };
    ctx.job.patchRepoDir = dir;
    const access = ctx.builder.patchAccess;
    if (access.kind !== 'http') {
      // A VM on a remote hypervisor cannot reach a server on this machine; Ansible copies the
      // repository into it over its SSH connection (through the bastion, if any).
      ctx.progress.say(`applying patch bundle ${m.id} (${m.packages.length} packages), copied in by Ansible`);
      return;
    }
    const server = await startRepoServer(dir, (line) => ctx.log.info({ src: 'patch-repo' }, line));
    ctx.patchServer = server;
    ctx.job.patchRepoUrl = access.url(server.port);
    ctx.progress.say(
      `applying patch bundle ${m.id} (${m.packages.length} packages) from ${ctx.job.patchRepoUrl}`,
    );
  },
  async cleanup(ctx) {
    await ctx.patchServer?.close();
  },
};
