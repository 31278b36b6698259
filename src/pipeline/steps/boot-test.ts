/** boot-test: boot the artifact in QEMU and check it (skipped with --no-test, which is recorded). */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bootTest, bootTestError } from '../../builders/boot-test/boot-test.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

/** What /etc/osbake-release must say in a build's image. */
export function expectedRelease(ctx: Pick<BuildContext, 'image' | 'plan' | 'prov'>): Record<string, string> {
  return {
    OSBAKE_IMAGE: ctx.image.name,
    OSBAKE_BUILD: ctx.plan.artifact,
    OSBAKE_RELEASE: ctx.plan.release ?? 'unreleased',
    OSBAKE_GIT_COMMIT: ctx.prov.commit,
  };
}

export const bootTestStep: Step<BuildContext> = {
  name: 'boot-test',
  title: 'boot-testing the image',
  async run(ctx) {
    const dir = join(ctx.plan.workDir, 'boot-test');
    const checksDir = join(ctx.image.dir, 'tests');
    try {
      const r = await bootTest({
        disk: ctx.artifactPath as string,
        workDir: dir,
        firmware: ctx.req.firmware ?? 'bios',
        accelerator: ctx.accel?.accelerator ?? 'tcg',
        expect: expectedRelease(ctx),
        checksDir: existsSync(checksDir) ? checksDir : undefined,
        log: ctx.log,
        signal: ctx.signal,
        onDetail: (t) => ctx.progress.detail(t),
        retries: ctx.project.config.builder.retries,
      });
      ctx.test = r;
      ctx.log.info({ test: r }, 'boot test');
      const checks = r.checks.length
        ? `, ${r.checks.filter((c) => c.passed).length}/${r.checks.length} checks`
        : '';
      ctx.progress.say(
        `boot test: ${r.passed ? 'passed' : 'FAILED'} (${r.firmware}, ${r.accelerator.toUpperCase()}, SSH after ${r.boot_s} s, ${r.state}${checks})`,
      );
      if (!r.passed) throw bootTestError(r, ctx.plan.artifact);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
