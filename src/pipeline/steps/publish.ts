/** publish: the artifact and its companions into the store, the artifact last (temp + fsync + rename). */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Line } from '../../artifacts/checksum.js';
import { buildSbom, writeSbom } from '../../artifacts/sbom.js';
import { placeFileAtomic, writeTextAtomic } from '../../artifacts/store.js';
import { UserError } from '../../errors.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

/** A build with a package list also publishes it, the SBOM and (--create-patches) the bundle. */
async function publishPackageExtras(ctx: BuildContext, dir: string, packagesFile: string): Promise<void> {
  const pkgs = join(dir, `${ctx.plan.artifact}.packages.tsv`);
  const b = ctx.createdBundle;
  if (b) {
    const bundleDest = join(ctx.project.storeDir, b.path);
    if (existsSync(bundleDest)) {
      throw new UserError(
        'E_ARTIFACT_EXISTS',
        `${bundleDest} already exists`,
        'commit your change (a new commit gives a new name) or remove the old bundle',
      );
    }
    const list = bundleDest.replace(/\.tar\.zst$/, '.txt');
    ctx.published.push(list, `${bundleDest}.sha256`, bundleDest);
    await placeFileAtomic(b.listFile, list);
    await writeTextAtomic(`${bundleDest}.sha256`, sha256Line(b.sha256, `${b.id}.tar.zst`));
    await placeFileAtomic(b.file, bundleDest, true);
  }
  const sbomFile = join(dir, `${ctx.plan.artifact}.cdx.json`);
  ctx.published.push(sbomFile, pkgs);
  await writeSbom(
    sbomFile,
    buildSbom({
      image: ctx.image.name,
      artifact: ctx.plan.artifact,
      sha256: ctx.sha256 as string,
      ...(({ distro, version, purlType }) => ({ distro, distroVersion: version, purlType }))(
        ctx.distro.sbomDistro(ctx.image),
      ),
      packages: ctx.packages ?? [],
    }),
  );
  await placeFileAtomic(packagesFile, pkgs);
}

export const publish: Step<BuildContext> = {
  name: 'publish',
  title: 'placing the artifacts in the store',
  async run(ctx) {
    const dir = ctx.plan.storeBuildsDir;
    const dest = join(dir, ctx.plan.artifactFile);
    if (existsSync(dest)) {
      throw new UserError(
        'E_ARTIFACT_EXISTS',
        `${dest} already exists`,
        'commit your change (a new commit gives a new name) or remove the old artifact',
      );
    }
    const sum = `${dest}.sha256`;
    for (const extra of ctx.extraArtifacts ?? []) {
      const to = join(dir, extra.name);
      ctx.published.push(to);
      await placeFileAtomic(extra.src, to, true);
    }
    if (ctx.packagesFile) await publishPackageExtras(ctx, dir, ctx.packagesFile);
    ctx.published.push(sum, dest);
    await writeTextAtomic(sum, sha256Line(ctx.sha256 as string, ctx.plan.artifactFile));
    ctx.progress.detail(`moving ${ctx.plan.artifactFile}`);
    // The image goes last: its presence under the final name means the rest is complete.
    await placeFileAtomic(ctx.artifactPath as string, dest, true);
  },
  async cleanup(ctx, outcome) {
    if (outcome === 'success' || ctx.recorded) return;
    for (const f of ctx.published) await rm(f, { force: true });
  },
};
