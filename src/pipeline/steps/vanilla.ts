/** vanilla: the cached host-made vanilla disk, built once per inputs hash (builders that use one). */
import { needsHostVanilla } from '../../builders/builder.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';
import { ensureVanillaDisk } from '../vanilla.js';

export const vanilla: Step<BuildContext> = {
  name: 'vanilla',
  title: 'preparing the vanilla disk',
  async run(ctx) {
    if (!needsHostVanilla(ctx.builder, ctx.distro)) {
      ctx.progress.say(
        `vanilla disk: none (the ${ctx.builder.type} builder's template provides the first disk)`,
      );
      return;
    }
    ctx.vanilla = await ensureVanillaDisk({
      distro: ctx.distro,
      project: ctx.project,
      image: ctx.image,
      log: ctx.log,
      signal: ctx.signal,
      scratchDir: ctx.plan.workDir,
      progress: (t) => ctx.progress.detail(t),
      debug: ctx.req.debug,
    });
    ctx.job.vanillaDisk = ctx.vanilla.path;
    ctx.progress.say(
      ctx.vanilla.cached
        ? `vanilla disk: reused ${ctx.vanilla.path}`
        : `vanilla disk: built ${ctx.vanilla.path}`,
    );
  },
};
