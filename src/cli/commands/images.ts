import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list the image definitions (images/<name>/image.yaml)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runImages } = await import('../../release/run-images.js');
      await runImages({ projectDir: g.project ?? process.cwd(), json: Boolean(opts.json) });
    });
}
