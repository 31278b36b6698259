import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      'check osbake.yaml, manifest.yaml and each image (image.yaml, Packer template, playbook, kickstart, manifest.json) without building',
    )
    .argument('[images...]', 'image names (default: every image)')
    .option('--json', 'print the checks as JSON')
    .addHelpText('after', '\nExamples:\n  osbake validate\n  osbake validate debian12-base --json')
    .action(async (images: string[], opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runValidate } = await import('../../pipeline/run-validate.js');
      await runValidate({ projectDir: g.project ?? process.cwd(), images, json: Boolean(opts.json) });
    });
}
