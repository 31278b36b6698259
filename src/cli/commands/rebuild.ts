import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerRebuild(program: Command): void {
  program
    .command('rebuild')
    .description(
      'build a recorded build again from its commit, release and caches, and compare it with the recorded SHA-256 (bit for bit); on a difference, list the files that differ',
    )
    .argument('<build>', 'artifact name, or an image name (its latest build, or the one RELEASE records)')
    .argument('[release]', 'with an image name: the build this release records')
    .option('--json', 'print the result as JSON')
    .option('--skip-commit', 'record the result in manifest.json without committing it')
    .option('--keep-work', 'keep the scratch directory (.osbake/work/rebuild-*)')
    .addHelpText(
      'after',
      '\nExit code 0: bit-identical; 1: the bytes differ (the files that differ are listed).\n\nExamples:\n  osbake rebuild debian12-base 2026.11\n  osbake rebuild debian12-base-2026.11-main-1a2b3c4d --json',
    )
    .action(
      async (
        build: string,
        release: string | undefined,
        opts: { json?: boolean; skipCommit?: boolean; keepWork?: boolean },
      ) => {
        const g = program.opts<GlobalOptions>();
        const { runRebuild } = await import('../../pipeline/run-rebuild.js');
        await runRebuild({ projectDir: g.project ?? process.cwd(), build, release, ...opts });
      },
    );
}
