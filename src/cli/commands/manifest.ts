import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerManifest(program: Command): void {
  const manifest = program
    .command('manifest')
    .description('maintain images/<image>/manifest.json (the build records)')
    .addHelpText('after', '\nExample:\n  osbake manifest prune --dry-run');
  manifest
    .command('prune')
    .description('keep only the latest clean build of each image in its manifest.json (store files are kept)')
    .argument('[image]', 'only this image (default: all images)')
    .option('--dry-run', 'print what would be removed, write nothing')
    .option('--json', 'print what was (or would be) removed as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake manifest prune --dry-run\n  osbake manifest prune debian12-base',
    )
    .action(async (image: string | undefined, opts: { dryRun?: boolean; json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runPrune } = await import('../../release/run-prune.js');
      const plans = await runPrune({
        projectDir: g.project ?? process.cwd(),
        image,
        dryRun: Boolean(opts.dryRun),
        ...(opts.json ? { out: { write: () => true } } : {}),
      });
      if (opts.json) {
        const rows = plans.map((p) => ({
          image: p.image,
          removed: p.remove.map((b) => b.custom_data.artifact),
        }));
        process.stdout.write(`${JSON.stringify({ dry_run: Boolean(opts.dryRun), images: rows }, null, 2)}\n`);
      }
    });
}
