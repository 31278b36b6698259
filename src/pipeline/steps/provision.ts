/** The builder's own steps, run as build steps, and the hand-over of what it produced. */
import type { Builder } from '../../builders/builder.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

export function builderSteps(builder: Builder, ctx: BuildContext): Step<BuildContext>[] {
  const steps: Step<BuildContext>[] = builder.steps(ctx.job).map((s) => ({
    name: s.name,
    title: s.title,
    run: () => s.run(),
    cleanup: s.cleanup ? (_c, outcome) => s.cleanup?.(outcome) ?? Promise.resolve() : undefined,
  }));
  steps.push({
    name: 'collect',
    title: "collecting the builder's artifact",
    async run(c) {
      const out = builder.output();
      c.artifactPath = out.artifactPath;
      c.packagesFile = out.packagesFile;
      c.packageStateFile = out.packageStateFile;
      c.recordAs = out.record;
      c.recordAccelerator = out.accelerator;
      c.recordExtra = { ...c.recordExtra, ...out.extra };
      c.extraArtifacts = out.companions;
    },
  });
  return steps;
}
