/** commit: manifest.json committed with the seed's message (unless --skip-commit). */
import { commitManifest } from '../../git/provenance.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

export const commit: Step<BuildContext> = {
  name: 'commit',
  title: 'committing manifest.json',
  async run(ctx) {
    if (ctx.req.skipCommit) {
      ctx.progress.say('--skip-commit: manifest.json updated but not committed');
      return;
    }
    await commitManifest(
      ctx.project.root,
      ctx.plan.manifestFile,
      ctx.image.name,
      ctx.prov,
      ctx.plan.artifact,
      ctx.log,
    );
    ctx.committed = true;
  },
};
