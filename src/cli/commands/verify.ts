import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check every artifact of release R (size and SHA-256) in the local store or on a mirror')
    .argument(
      '<release>',
      "release name recorded in manifest.yaml (or, with --mirror, in the mirror's /api/releases)",
    )
    .option(
      '--mirror <url>',
      'HTTP(S) root of a mirror holding builds/ and repos/ (default: the local store)',
    )
    .option('--json', 'print the results as JSON (the exit code still says whether all verified)')
    .option('--skip-signature', "do not check R's signature (the output says so); never the default")
    .addHelpText(
      'after',
      [
        '',
        'With --mirror, the artifact list comes from manifest.yaml when the project records the release (a',
        'mirror served by osbake serve must then list the same artifacts at /api/releases), else from the',
        "mirror's /api/releases; outside a project only the mirror's list is used.",
        '',
        'Examples:',
        '  osbake verify 2026.11',
        '  osbake verify 2026.11 --mirror http://mirror.example/osbake',
      ].join('\n'),
    )
    .action(async (release: string, opts: { mirror?: string; json?: boolean; skipSignature?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runVerify } = await import('../../release/run-verify.js');
      await runVerify({
        projectDir: g.project ?? process.cwd(),
        release,
        mirror: opts.mirror,
        json: Boolean(opts.json),
        skipSignature: Boolean(opts.skipSignature),
      });
    });
}
