import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerClean(program: Command): void {
  program
    .command('clean')
    .description(
      'remove what killed builds left (work directories with their mounts, loop devices and processes), stale locks, temporary files, and cache entries unused for long',
    )
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option(
      '--cache-older-than <age>',
      'cache entries (vanilla disks, installer OS, netboot files) unused for longer: 30d, 12h, 90m',
      '30d',
    )
    .option(
      '--hypervisor <name>',
      "also what killed libvirt builds left on this hypervisor (or all): osbake's domains and volumes only",
    )
    .option('--json', 'print the actions as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  osbake clean --dry-run\n  osbake clean --cache-older-than 7d\n  osbake clean --hypervisor kvm1',
    )
    .action(
      async (opts: { dryRun?: boolean; cacheOlderThan?: string; json?: boolean; hypervisor?: string }) => {
        const g = program.opts<GlobalOptions>();
        const { runClean } = await import('../../pipeline/run-clean.js');
        await runClean({ projectDir: g.project ?? process.cwd(), ...opts });
      },
    );
}
