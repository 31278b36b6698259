import type { Command } from 'commander';
import type { GlobalOptions } from '../main.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check every artifact of release R (size and SHA-256) in the local store or on a mirror')
    .argument('<release>', 'release name recorded in manifest.yaml')
    .option(
      '--mirror <url>',
      'HTTP(S) root of a mirror holding builds/ and repos/ (default: the local store)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  osbake verify 2026.11\n  osbake verify 2026.11 --mirror http://mirror.example/osbake',
    )
    .action(async (release: string, opts: { mirror?: string }) => {
      const g = program.opts<GlobalOptions>();
      const { verifyRelease } = await import('../../release/verify.js');
      await verifyRelease({ projectDir: g.project ?? process.cwd(), release, mirror: opts.mirror });
    });
}
