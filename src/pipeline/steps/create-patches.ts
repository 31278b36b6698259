/** create-patches: the distro makes a security-patch bundle for the image's installed packages. */
import { join } from 'node:path';
import { signingKeyOf } from '../../signing/project-keys.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

export const createPatches: Step<BuildContext> = {
  name: 'create-patches',
  title: 'creating the security-patch bundle',
  async run(ctx) {
    if (!ctx.req.createPatches) return;
    const id = `${ctx.plan.artifact}-patches`;
    const b = await ctx.distro.createPatchBundle({
      project: ctx.project,
      image: ctx.image,
      stateFile: ctx.packageStateFile ?? join(ctx.plan.workDir, ctx.distro.packageState.file),
      workDir: join(ctx.plan.workDir, 'patch-bundle'),
      id,
      artifact: ctx.plan.artifact,
      signingKey: signingKeyOf(ctx.project),
      log: ctx.log,
      signal: ctx.signal,
      onDetail: (t) => ctx.progress.detail(t),
    });
    ctx.createdBundle = b;
    ctx.progress.say(`patch bundle ${id}: ${b.packages} package(s), ${(b.size / 2 ** 20).toFixed(1)} MiB`);
  },
};
