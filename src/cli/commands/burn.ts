import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerBurn(program: Command): void {
  program
    .command('burn')
    .description('write an image to a USB drive (sparse copy by its bmap, fsync, read-back verification)')
    .argument(
      '[image]',
      'raw / .raw.zst / .qcow2 file, build artifact in store/builds/, or release (its installer)',
    )
    .argument(
      '[devices...]',
      'whole disk(s) to write, e.g. /dev/sdb (several: written at once), or a file (as bmaptool copy); none: list the drives',
    )
    .option(
      '--force [checks]',
      'skip safety checks: removable (bare --force), mounted, root, size, or all; comma-separated',
    )
    .option('-y, --yes', 'do not ask to type the device name (needed without a terminal)')
    .option('--no-verify', 'skip reading the written ranges back')
    .option(
      '--holes <mode>',
      'auto: zero holes when the device can without writing them; zero: always; keep',
      'auto',
    )
    .option(
      '--bmap <file>',
      'the block map to use (default: IMAGE.bmap beside the image, else made and kept there)',
    )
    .option('--nobmap', 'write every byte of the image, holes included (bmaptool --nobmap)')
    .option('--dry-run', 'run every check and prepare the bmap, then stop before opening the device')
    .option('--json', 'list the candidate drives as JSON; with several drives: the per-drive report as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  osbake burn                                   list drives and whether burn would accept them',
        '  osbake burn --json                            the same as JSON',
        '  osbake burn 2026.11 /dev/sdb                  write the installer of release 2026.11',
        '  osbake burn usb-installer-2026.11-main-1a2b3c4d /dev/sdb',
        '  osbake burn ./disk.raw /dev/sdc --yes         no prompt (scripts); bmap made if missing',
        '  osbake burn disk.raw.zst /dev/sdb --dry-run   check everything, write nothing',
        '  osbake burn disk.raw /dev/loop3 --force       a loop device is not removable',
        '  osbake burn disk.raw.zst copy.raw             into a file: sparse, verified, then renamed',
        '  osbake burn 2026.11 /dev/sdb /dev/sdc /dev/sdd --yes   three sticks at once, a table at the end',
      ].join('\n'),
    )
    .action((image: string | undefined, devices: string[], opts: BurnCliOptions) =>
      burnCommand(program.opts<GlobalOptions>(), image, devices, opts),
    );
}

/** The options commander parsed for osbake burn. */
interface BurnCliOptions {
  force?: string | boolean;
  yes?: boolean;
  verify: boolean;
  holes: string;
  dryRun?: boolean;
  json?: boolean;
  bmap?: string;
  nobmap?: boolean;
}

async function burnCommand(
  g: GlobalOptions,
  image: string | undefined,
  devices: string[],
  opts: BurnCliOptions,
): Promise<void> {
  // Loaded on use: the other verbs do not pay for the XML parser and the device code.
  const { runBurn } = await import('../../media/run-burn.js');
  const { commandLogFile, createFileLogger } = await import('../../log/logger.js');
  // A write (not a listing) logs every step and command to a file, named in the summary.
  const device = devices[0];
  const logFile = image && device ? commandLogFile('burn') : undefined;
  const projectDir = g.project ?? process.cwd();
  await runBurn({
    checkRelease: async (release) => {
      const { checkReleaseForBurn } = await import('../../release/verify.js');
      return checkReleaseForBurn(projectDir, release);
    },
    source: image,
    device,
    devices,
    log: logFile ? createFileLogger(logFile) : undefined,
    logFile,
    projectDir,
    force: opts.force,
    yes: opts.yes,
    verify: opts.verify,
    holes: opts.holes,
    dryRun: opts.dryRun,
    json: opts.json,
    bmap: opts.bmap,
    noBmap: opts.nobmap,
  });
}
