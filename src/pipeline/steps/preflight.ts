/** preflight: every tool the build will run is on PATH, the builder's own checks, the work dir. */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { BOOT_TEST_TOOLS } from '../../builders/boot-test/boot-test.js';
import { needsHostVanilla } from '../../builders/builder.js';
import { currentOwner } from '../../config/lock.js';
import { UserError } from '../../errors.js';
import { missingToolError } from '../../exec/run.js';
import { disown, own } from '../../fsx/owned.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

/** In every build's work directory: the owner process (see osbake clean). */
export const WORK_OWNER_FILE = '.osbake-owner';

/** Tools that are not on PATH (pure: takes PATH and an existence check). */
export function missingTools(
  tools: readonly string[],
  path: string,
  exists: (p: string) => boolean,
): string[] {
  const dirs = path.split(delimiter).filter(Boolean);
  return [...new Set(tools)].filter((t) =>
    isAbsolute(t) ? !exists(t) : !dirs.some((d) => exists(join(d, t))),
  );
}

/** Every tool this build will run. */
export function toolsOf(ctx: BuildContext): string[] {
  const b = ctx.builder;
  return [
    ...b.tools,
    ...(needsHostVanilla(b, ctx.distro) ? ctx.distro.vanillaTools : []),
    ...(b.bootTest && !ctx.req.noTest ? BOOT_TEST_TOOLS : []),
  ];
}

export function missingToolsError(missing: string[]): UserError {
  const first = missingToolError(missing[0] as string);
  const all = missing.map((t) => missingToolError(t).hint?.replace('install it with: apt-get install ', ''));
  return new UserError(
    'E_TOOL_MISSING',
    `${missing.join(', ')} not found`,
    missing.length === 1 ? first.hint : `install them with: apt-get install ${[...new Set(all)].join(' ')}`,
  );
}

export const preflight: Step<BuildContext> = {
  name: 'preflight',
  title: 'checking inputs, tools and accelerator',
  async run(ctx) {
    // The builder's checks of its inputs first: bad input is said before a missing tool.
    await ctx.builder.checkInputs?.(ctx.job);
    const missing = missingTools(toolsOf(ctx), process.env.PATH ?? '', existsSync);
    if (missing.length > 0) throw missingToolsError(missing);
    await mkdir(ctx.plan.workDir, { recursive: true });
    // Whose work directory this is: osbake clean removes it only once this process is gone.
    own(ctx.plan.workDir, 'work-dir');
    await writeFile(join(ctx.plan.workDir, WORK_OWNER_FILE), JSON.stringify(currentOwner()));
    if (needsHostVanilla(ctx.builder, ctx.distro)) ctx.distro.checkBootstrap(ctx.project, ctx.image);
    await ctx.builder.preflight(ctx.job);
    ctx.log.info({ builder: ctx.builder.type, accel: ctx.accel }, 'preflight');
  },
  async cleanup(ctx, outcome) {
    const keep = ctx.req.keepWork || (ctx.req.debug && outcome !== 'success');
    if (keep) {
      ctx.progress.say(`work directory kept: ${ctx.plan.workDir}`);
      return;
    }
    await rm(ctx.plan.workDir, { recursive: true, force: true });
    disown(ctx.plan.workDir);
  },
};
