/** The steps of a disk-image build, in order; the builder contributes the provisioning ones. */
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
  return [
    preflight,
    ...(req.release || req.createPatches ? [patchSource] : []),
    vanilla,
    ...builderSteps(builder, ctx),
    postProcess,
    ...(req.noTest ? [] : [bootTestStep]),
    ...(req.createPatches ? [createPatches] : []),
    publish,
    record,
    commit,
  ];
}
