import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerRelease(program: Command): void {
  program
    .command('release')
    .description(
      'record release R in manifest.yaml: the latest clean build of each image for R and a patch bundle, ' +
        'checked in the store; also writes store/releases/<R>.json',
    )
    .argument('<release>', 'release name, e.g. 2026.11')
    .option('--patches <bundle-id>', 'the patch bundle to include (default: the newest one)')
    .option('--no-patches', 'record no patch bundle')
    .option('--force', 'allow changing or removing artifacts the release already records')
    .option('--skip-commit', 'write manifest.yaml but do not commit it (the default commits only that file)')
    .option('--json', 'print what was recorded as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake release 2026.11\n  osbake release 2026.11 --patches debian12-patches-20261120 --force\n  osbake release 2026.11 --no-patches',
    )
    .action(
      async (
        release: string,
        opts: { patches?: string | boolean; force?: boolean; json?: boolean; skipCommit?: boolean },
      ) => {
        const g = program.opts<GlobalOptions>();
        // commander lets the later of --patches ID and --no-patches win: they exclude each other.
        const argv = process.argv.slice(2);
        if (
          argv.some((a) => a === '--patches' || a.startsWith('--patches=')) &&
          argv.includes('--no-patches')
        ) {
          const { UserError } = await import('../../errors.js');
          throw new UserError(
            'E_USAGE',
            '--patches and --no-patches exclude each other',
            'give one: --patches BUNDLE-ID to record that bundle, --no-patches to record none',
          );
        }
        const { runRelease } = await import('../../release/run-release.js');
        const plan = await runRelease({
          projectDir: g.project ?? process.cwd(),
          release,
          patches: opts.patches,
          force: Boolean(opts.force),
          skipCommit: Boolean(opts.skipCommit),
          ...(opts.json ? { out: { write: () => true } } : {}),
        });
        if (opts.json) {
          const { release: name, entry, changes, notes, changed } = plan;
          process.stdout.write(
            `${JSON.stringify({ release: name, changed, entry, changes, notes }, null, 2)}\n`,
          );
        }
      },
    );
}
