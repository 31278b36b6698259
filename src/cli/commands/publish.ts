import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import type { GlobalOptions } from '../options.js';

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description(
      "copy a build's or a release's files from the store to a remote mirror (rsync over SSH, resumable, " +
        'host keys checked; temporary name, sha256 checked on the mirror, then renamed)',
    )
    .argument('[build]', 'artifact name, or an image name for its latest build')
    .option('-r, --release <release>', 'publish every file of release R (and store/releases/R.json)')
    .option('--to <url>', 'mirror: ssh://user@host[:port]/path (default: osbake.yaml publish.to)')
    .option(
      '--known-hosts <file>',
      "known_hosts holding the mirror's host key (default: publish.knownHosts, ~/.ssh/known_hosts)",
    )
    .option('-i, --identity <file>', 'SSH private key (default: publish.identityFile)')
    .option('--bwlimit <KiB/s>', 'limit the upload rate (rsync --bwlimit)')
    .addHelpText(
      'after',
      [
        '',
        'An interrupted upload resumes where it stopped when run again (the partial file is kept in',
        '.rsync-partial/ on the mirror); files already on the mirror with the right sha256 are skipped.',
        '',
        'Examples:',
        '  osbake publish debian12-base-2026.11-main-1a2b3c4d',
        '  osbake publish --release 2026.11 --to ssh://deploy@mirror.example/srv/osbake',
        '  osbake publish debian12-base --to ssh://deploy@mirror.example:2222/srv/osbake --known-hosts ./mirror_known_hosts',
      ].join('\n'),
    )
    .action(
      async (
        build: string | undefined,
        opts: { release?: string; to?: string; knownHosts?: string; identity?: string; bwlimit?: string },
      ) => {
        const g = program.opts<GlobalOptions>();
        if (opts.bwlimit !== undefined && !/^[1-9]\d*$/.test(opts.bwlimit)) {
          throw new UserError(
            'E_USAGE',
            `--bwlimit ${opts.bwlimit} is not a positive number`,
            'give KiB/s, e.g. --bwlimit 10000',
          );
        }
        // Loaded on use: other verbs do not pay for the build pipeline's modules.
        const { runPublish } = await import('../../publish/run-publish.js');
        const { trapSignals } = await import('../../exec/signals.js');
        const { commandLogFile, createFileLogger } = await import('../../log/logger.js');
        const logFile = commandLogFile('publish');
        const ac = new AbortController();
        const untrap = trapSignals(ac, (s) =>
          process.stderr.write(`osbake: ${s}: stopping the upload (it resumes next time)\n`),
        );
        try {
          await runPublish({
            projectDir: g.project ?? process.cwd(),
            build,
            release: opts.release,
            to: opts.to,
            knownHosts: opts.knownHosts,
            identity: opts.identity,
            bwlimitKiB: opts.bwlimit === undefined ? undefined : Number(opts.bwlimit),
            signal: ac.signal,
            log: createFileLogger(logFile),
          });
        } catch (err) {
          // A usage error says it all; a failed command's whole output is in the log.
          if (!(err instanceof UserError))
            process.stderr.write(`osbake: publish failed (full log: ${logFile})\n`);
          throw err;
        } finally {
          untrap();
        }
      },
    );
}
