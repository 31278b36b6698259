import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description("the project's OpenPGP signing key and the trust root in keys/ (GnuPG)");
  keys
    .command('init')
    .description(
      'make an ed25519 signing key offline, export its public key to keys/<FINGERPRINT>.asc, set signing.key',
    )
    .option('--uid <user-id>', 'user id, e.g. "Cluster OS releases <ops@example.org>"')
    .option('--expire <period>', 'expiry: 2y, 18m, 365d or never', '3y')
    .option(
      '--gnupg-home <dir>',
      'GnuPG home for the secret key (default: signing.gnupgHome, $GNUPGHOME, ~/.gnupg)',
    )
    .action(async (opts: { uid?: string; expire?: string; gnupgHome?: string }) => {
      const g = program.opts<GlobalOptions>();
      const { runKeysInit } = await import('../../signing/run-keys.js');
      await runKeysInit({ projectDir: g.project ?? process.cwd(), ...opts });
    });
  keys
    .command('list')
    .description('the keys in keys/: fingerprint, user id, dates, state, which one signs')
    .option('--json', 'as JSON')
    .action(async (opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { runKeysList } = await import('../../signing/run-keys.js');
      await runKeysList({ projectDir: g.project ?? process.cwd(), ...opts });
    });
}
