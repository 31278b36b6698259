import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import type { GlobalOptions } from '../options.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description(
      'build an image: vanilla disk (cached) → the builder (chroot, Packer qemu or libvirt) → checksum → boot test → store → manifest.json → git commit',
    )
    .argument('[image]', 'image name (osbake images lists them); omit with --all')
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
      '--builder <type>',
      'auto | chroot | qemu | libvirt (default: osbake.yaml builder.type, auto: qemu with KVM, else chroot)',
    )
    .option('--no-test', 'skip the boot test after the build (recorded in manifest.json)')
    .option('--json', 'print the build summary as JSON on stdout (progress stays on stderr)')
    .option(
      '--var <name=value>',
      'a Packer variable of the image (repeatable; wins over image.yaml)',
      collect,
      [],
    )
    .option('--var-file <file>', 'a Packer variables file (repeatable)', collect, [])
    .option('--firmware <fw>', 'firmware of the boot test: bios | uefi | secureboot (default bios)')
    .option('--hypervisor <name>', 'build on this configured hypervisor (implies --builder libvirt)')
    .option(
      '--all',
      'build every image, dependencies (image.yaml needs:) first, one build per hypervisor at a time',
    )
    .option('--no-publish', "do not upload the build to osbake.yaml's publish.to mirror afterwards")
    .option(
      '--package <file>',
      'installer images: an extra file put on the stick (package/ with its .sha256)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  osbake build debian12-base --release 2026.11\n  osbake build debian12-base --release 2026.11 --builder chroot   # no VM: minutes without KVM\n  osbake build debian12-base --release 2026.11 --skip-commit\n  osbake --debug build debian12-base --release test   # packer -debug, prints the SSH command\n  osbake build rocky8-base --release 2026.11 --builder libvirt --hypervisor kvm1\n  osbake build --all --release 2026.11 --builder libvirt   # spread over every hypervisor\n  osbake build usb-installer --release 2026.11 --package site-config.tar.gz   # USB stick image (.raw)',
    )
    .action((image: string | undefined, opts: BuildCliOptions) =>
      buildCommand(program.opts<GlobalOptions>(), image, opts),
    );
}

/** The options commander parsed for osbake build. */
interface BuildCliOptions {
  all?: boolean;
  builder?: string;
  hypervisor?: string;
  release?: string;
  skipCommit?: boolean;
  createPatches?: boolean;
  accelerator?: string;
  keepWork?: boolean;
  publish?: boolean;
  package?: string;
  test?: boolean;
  firmware?: string;
  var: string[];
  varFile: string[];
  json?: boolean;
}

/** One image (runBuild) or --all (runBuildAll), with the options as the verb's entries take them. */
async function buildCommand(
  g: GlobalOptions,
  image: string | undefined,
  opts: BuildCliOptions,
): Promise<void> {
  const { runBuild } = await import('../../pipeline/run-build.js');
  const { runBuildAll } = await import('../../pipeline/run-build-all.js');
  const common = {
    projectDir: g.project ?? process.cwd(),
    release: opts.release,
    skipCommit: Boolean(opts.skipCommit),
    createPatches: Boolean(opts.createPatches),
    debug: Boolean(g.debug),
    accelerator: opts.accelerator,
    keepWork: Boolean(opts.keepWork),
    builder: opts.builder,
    hypervisor: opts.hypervisor,
    noPublish: opts.publish === false,
    packageFile: opts.package,
    noTest: opts.test === false,
    json: Boolean(opts.json),
    packerVars: opts.var,
    packerVarFiles: opts.varFile,
    firmware: opts.firmware,
  };
  if (opts.all) {
    if (image) {
      throw new UserError(
        'E_USAGE',
        `--all builds every image; do not name one (${image})`,
        'osbake build --all --release R',
      );
    }
    await runBuildAll(common);
    return;
  }
  if (!image) {
    throw new UserError(
      'E_USAGE',
      'osbake build needs an image name or --all',
      'osbake images lists the images',
    );
  }
  await runBuild({ ...common, image });
}
