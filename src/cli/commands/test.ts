import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerTest(program: Command): void {
  program
    .command('test')
    .description(
      "boot a build in QEMU on a throwaway overlay, wait for systemd, check /etc/osbake-release and run the image's tests/",
    )
    .argument('<build>', 'artifact name, or an image name for its latest build')
    .option(
      '--firmware <fw>',
      'bios (SeaBIOS) | uefi (OVMF) | secureboot (OVMF, Secure Boot enforced)',
      'bios',
    )
    .option('--accelerator <kind>', 'auto | kvm | tcg (default: osbake.yaml builder.accelerator)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake test debian12-base\n  osbake test debian12-base-2026.11-main-1a2b3c4d --firmware uefi --json',
    )
    .action(async (build: string, opts: { firmware?: string; accelerator?: string; json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runTest } = await import('../../pipeline/run-test.js');
      await runTest({ projectDir: g.project ?? process.cwd(), build, ...opts });
    });
}
