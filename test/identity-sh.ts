/**
 * Running the installer's identity.sh as /init runs it: sourced by busybox sh (the installer's own
 * shell), with log/fail as /init defines them, and the seams ID_SYS (a sysfs tree: NICs, DMI
 * serial) and ID_TMP (where /init keeps the fetched identity).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const IDENTITY_SH = join(import.meta.dirname, '../images/usb-installer/installer/identity.sh');

/** busybox and root (identity.sh chowns keys to their users): what running it needs. */
export const canRunIdentitySh = spawnSync('busybox', ['true']).status === 0 && process.getuid?.() === 0;

export function identitySh(
  s: { sys: string; tmp: string },
  script: string,
): { code: number | null; out: string } {
  const r = spawnSync(
    'busybox',
    [
      'sh',
      '-c',
      `log() { echo "LOG $*"; }; fail() { echo "FAIL $*"; exit 9; }; . "${IDENTITY_SH}"; ${script}`,
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH, ID_SYS: s.sys, ID_TMP: s.tmp } },
  );
  return { code: r.status, out: r.stdout + r.stderr };
}
