import type { Command } from 'commander';
import { runBuild } from '../../pipeline/run-build.js';
import type { GlobalOptions } from '../main.js';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description(
      'build an image: vanilla disk (cached) → packer → checksum → store → manifest.json → git commit',
    )
    .argument('<image>', 'image name (osbake images lists them)')
    .option(
      '-r, --release <release>',
      "release this build belongs to (required); applies that release's patch bundle",
    )
    .option(
      '--create-patches',
      'also make a security-patch bundle of every newer package (--release optional)',
    )
    .option(
      '--skip-commit',
      'allow a dirty git tree: the artifact is named -dirty and manifest.json is not committed',
    )
    .option('--accelerator <kind>', 'auto | kvm | tcg (default: osbake.yaml builder.accelerator)')
    .option('--keep-work', 'keep the build work directory (.osbake/work/...)')
    .option(
      '--package <file>',
      'installer images: an extra file put on the stick (package/ with its .sha256)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  osbake build debian12-base --release 2026.11\n  osbake build debian12-base --release 2026.11 --skip-commit\n  osbake --debug build debian12-base --release test   # packer -debug, prints the SSH command\n  osbake build usb-installer --release 2026.11 --package site-config.tar.gz   # USB stick image (.raw)',
    )
    .action(
      async (
        image: string,
        opts: {
          release?: string;
          skipCommit?: boolean;
          createPatches?: boolean;
          accelerator?: string;
          keepWork?: boolean;
          package?: string;
        },
      ) => {
        const g = program.opts<GlobalOptions>();
        await runBuild({
          projectDir: g.project ?? process.cwd(),
          image,
          release: opts.release,
          skipCommit: Boolean(opts.skipCommit),
          createPatches: Boolean(opts.createPatches),
          debug: Boolean(g.debug),
          accelerator: opts.accelerator,
          keepWork: Boolean(opts.keepWork),
          packageFile: opts.package,
        });
      },
    );
}
