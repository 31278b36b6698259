/** record: the build's entry in the image's manifest.json (Packer's shape, osbake's facts). */
import { relative } from 'node:path';
import { appendBuild } from '../../config/builds.js';
import { buildManifestEntry } from '../build.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

export const record: Step<BuildContext> = {
  name: 'record',
  title: 'recording the build in manifest.json',
  async run(ctx) {
    if (!ctx.recordAs) throw new Error('no build record: the builder did not finish');
    const entry = buildManifestEntry({
      plan: ctx.plan,
      prov: ctx.prov,
      packer: ctx.recordAs,
      sha256: ctx.sha256 as string,
      size: ctx.size as number,
      packageCount: ctx.packages?.length ?? 0,
      durationS: (Date.now() - ctx.startedAt) / 1000,
      accelerator: ctx.recordAccelerator ?? 'none',
      extra: {
        builder: ctx.builder.type,
        builder_reason: ctx.builderReason,
        ...ctx.recordExtra,
        vanilla_key: ctx.vanilla?.key,
        log_file: relative(ctx.project.root, ctx.plan.logFile),
        ...(ctx.test
          ? { test: ctx.test }
          : ctx.req.noTest && ctx.builder.bootTest
            ? { test: { skipped: true } }
            : {}),
        ...(ctx.createdBundle
          ? {
              patch_bundle: {
                id: ctx.createdBundle.id,
                path: ctx.createdBundle.path,
                sha256: ctx.createdBundle.sha256,
                size: ctx.createdBundle.size,
                packages: ctx.createdBundle.packages,
              },
            }
          : {}),
        ...(ctx.appliedBundle ? { applied_patch_bundle: ctx.appliedBundle } : {}),
      },
    });
    await appendBuild(ctx.plan.manifestFile, entry);
    ctx.recorded = true;
  },
};
