import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('compare the package lists of two builds or two releases (added, removed, changed)')
    .argument('<a>', 'artifact name, image name (its latest build) or release name')
    .argument('<b>', 'artifact name, image name (its latest build) or release name')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake diff 2026.10 2026.11\n  osbake diff debian12-base-2026.11-main-1a2b3c4d debian12-base-2026.11-main-5e6f7a8b --json',
    )
    .action(async (a: string, b: string, opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runDiff } = await import('../../release/run-packages.js');
      await runDiff({ projectDir: g.project ?? process.cwd(), a, b, json: Boolean(opts.json) });
    });
}
