/** The steps of a build, in order; the builder contributes its own between vanilla and post-process. */
import type { Builder } from '../../builders/builder.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';
import { bootTestStep } from './boot-test.js';
import { commit } from './commit.js';
import { createPatches } from './create-patches.js';
import { patchSource } from './patch-source.js';
import { postProcess } from './post-process.js';
import { preflight } from './preflight.js';
import { builderSteps } from './provision.js';
import { publish } from './publish.js';
import { record } from './record.js';
import { vanilla } from './vanilla.js';

export function imageSteps(builder: Builder, ctx: BuildContext): Step<BuildContext>[] {
  const { req } = ctx;
  const patches = builder.patchAccess.kind !== 'none' && (req.release || req.createPatches);
  return [
    preflight,
    ...(patches ? [patchSource] : []),
    ...(builder.vanilla === 'never' ? [] : [vanilla]),
    ...builderSteps(builder, ctx),
    postProcess,
    ...(builder.bootTest && !req.noTest ? [bootTestStep] : []),
    ...(req.createPatches ? [createPatches] : []),
    publish,
    record,
    commit,
  ];
}
