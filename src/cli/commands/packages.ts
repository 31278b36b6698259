import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerPackages(program: Command): void {
  program
    .command('packages')
    .description('list the packages installed in a build (name, version, arch)')
    .argument('<build>', 'artifact name, or an image name for its latest build')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake packages debian12-base\n  osbake packages debian12-base-2026.11-main-1a2b3c4d --json',
    )
    .action(async (build: string, opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runPackages } = await import('../../release/run-packages.js');
      await runPackages({ projectDir: g.project ?? process.cwd(), build, json: Boolean(opts.json) });
    });
}
