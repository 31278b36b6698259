/**
 * OpenPGP signatures with GnuPG, the standard apt, dnf and bmaptool verify against: making the
 * project key (gpg --quick-gen-key, ed25519, offline), detached and clear-signed signatures
 * (gpg --detach-sign / --clearsign), and verification with gpgv against a keyring made from the
 * repository's keys/ only (never the user's own keyring: the repository is the trust root).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessError, UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import { checkDirectory, INPUT_CAPS, readInputBytes } from '../fsx/input.js';
import type { Logger } from '../log/logger.js';

/** A public key as `gpg --show-keys --with-colons` describes it. */
export interface KeyInfo {
  fingerprint: string;
  uid: string;
  created: Date;
  expires?: Date;
  revoked: boolean;
  expired: boolean;
}

/** Keys of `gpg --with-colons` output (pure): pub/sec records with their fpr and first uid. */
export function parseColonKeys(text: string, now = new Date()): KeyInfo[] {
  const keys: KeyInfo[] = [];
  let cur: KeyInfo | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const type = f[0];
    if (type === 'pub' || type === 'sec') {
      const created = new Date(Number(f[5]) * 1000);
      const expires = f[6] ? new Date(Number(f[6]) * 1000) : undefined;
      cur = {
        fingerprint: '',
        uid: '',
        created,
        ...(expires ? { expires } : {}),
        revoked: f[1] === 'r',
        expired: f[1] === 'e' || (expires !== undefined && expires.getTime() <= now.getTime()),
      };
      keys.push(cur);
    } else if (type === 'fpr' && cur && !cur.fingerprint) {
      cur.fingerprint = f[9] ?? '';
    } else if (type === 'uid' && cur && !cur.uid) {
      cur.uid = (f[9] ?? '').replace(/\\x3a/g, ':');
    } else if (type === 'sub' || type === 'ssb') {
      // a subkey's fpr line follows: not the primary's
      if (cur?.fingerprint) cur = { ...cur };
    }
  }
  return keys.filter((k) => k.fingerprint);
}

export type SignatureResult =
  | { status: 'good'; fingerprint: string; uid: string }
  | { status: 'bad'; uid: string }
  | { status: 'unknown-key'; keyId: string }
  | { status: 'expired-key'; fingerprint: string; uid: string }
  | { status: 'revoked-key'; fingerprint: string; uid: string }
  | { status: 'unsigned' }
  | { status: 'error'; reason: string };

/** What gpgv's --status-fd lines say about one signature (pure). */
export function parseGpgvStatus(text: string): SignatureResult {
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice(9));
  const find = (kw: string) => lines.find((l) => l.startsWith(`${kw} `))?.slice(kw.length + 1);
  const validFpr = find('VALIDSIG')?.split(' ')[0] ?? '';
  const uidOf = (rest: string | undefined) => (rest ?? '').split(' ').slice(1).join(' ');
  const bad = find('BADSIG');
  if (bad !== undefined) return { status: 'bad', uid: uidOf(bad) };
  const revoked = find('REVKEYSIG');
  if (revoked !== undefined) return { status: 'revoked-key', fingerprint: validFpr, uid: uidOf(revoked) };
  const expired = find('EXPKEYSIG');
  if (expired !== undefined) return { status: 'expired-key', fingerprint: validFpr, uid: uidOf(expired) };
  const good = find('GOODSIG');
  if (good !== undefined && validFpr) return { status: 'good', fingerprint: validFpr, uid: uidOf(good) };
  const noKey = find('NO_PUBKEY');
  if (noKey !== undefined) return { status: 'unknown-key', keyId: noKey.trim() };
  const err = find('ERRSIG');
  if (err !== undefined) return { status: 'error', reason: `gpgv could not check it (ERRSIG ${err})` };
  if (lines.some((l) => l.startsWith('NODATA')))
    return { status: 'error', reason: 'not an OpenPGP signature' };
  return { status: 'error', reason: 'gpgv reported no signature' };
}

/** One line for a signature result, e.g. "good signature by NAME (FPR)" (pure). */
export function describeSignature(r: SignatureResult): string {
  switch (r.status) {
    case 'good':
      return `good signature by ${r.uid} (${r.fingerprint})`;
    case 'bad':
      return `BAD signature (claims ${r.uid || 'an unknown signer'}): the file was changed after signing`;
    case 'unknown-key':
      return `signed by a key that is not in the repository's keys/ (key id ${r.keyId})`;
    case 'expired-key':
      return `signed by an expired key: ${r.uid} (${r.fingerprint})`;
    case 'revoked-key':
      return `signed by a revoked key: ${r.uid} (${r.fingerprint})`;
    case 'unsigned':
      return 'unsigned';
    case 'error':
      return `signature not checkable: ${r.reason}`;
  }
}

/** gpg with its home and no questions (an unprotected key, or the agent already has it). */
function gpg(home: string, ...args: string[]): string[] {
  return ['gpg', '--batch', '--no-tty', '--homedir', home, ...args];
}

/** The signing key must exist as a secret key in the GnuPG home (checked before any work). */
export async function requireSecretKey(home: string, fingerprint: string, log: Logger): Promise<KeyInfo> {
  const out = await capture(gpg(home, '--with-colons', '--list-secret-keys', fingerprint), {
    log,
    okCodes: [2],
  }).catch(() => '');
  const key = parseColonKeys(out).find((k) => k.fingerprint === fingerprint);
  if (!key) {
    throw new UserError(
      'E_SIGNING_KEY',
      `the signing key ${fingerprint} has no secret key in ${home}`,
      'import it (gpg --import) into that GnuPG home, set signing.gnupgHome, or make one with osbake keys init',
    );
  }
  if (key.revoked || key.expired) {
    throw new UserError(
      'E_SIGNING_KEY',
      `the signing key ${fingerprint} (${key.uid}) is ${key.revoked ? 'revoked' : 'expired'}`,
      'make a new key (osbake keys init) and set signing.key to it; keep the old public key in keys/ for old releases',
    );
  }
  return key;
}

/** Make an ed25519 signing key without a passphrase (offline); returns its fingerprint. */
export async function generateKey(home: string, uid: string, expire: string, log: Logger): Promise<string> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  await run(
    gpg(
      home,
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--quick-gen-key',
      uid,
      'ed25519',
      'sign',
      expire,
    ),
    { log, tag: 'gpg' },
  );
  const out = await capture(gpg(home, '--with-colons', '--list-secret-keys', `=${uid}`), { log });
  const keys = parseColonKeys(out).sort((a, b) => b.created.getTime() - a.created.getTime());
  const fpr = keys[0]?.fingerprint;
  if (!fpr) throw new Error(`gpg made no key for ${uid}`);
  return fpr;
}

export async function exportPublicKey(home: string, fingerprint: string, log: Logger): Promise<string> {
  return capture(gpg(home, '--armor', '--export-options', 'export-minimal', '--export', fingerprint), {
    log,
  }).then((t) => `${t.trim()}\n`);
}

/** The keys of an armored or binary key file (gpg --show-keys: imports nothing). */
export async function showKeys(file: string, log: Logger): Promise<KeyInfo[]> {
  return parseColonKeys(await showKeysColons(file, log));
}

/** `gpg --show-keys --with-colons` of a key file in a throwaway home (imports nothing). */
async function showKeysColons(file: string, log: Logger): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'osbake-gpg-'));
  try {
    return await capture(gpg(home, '--with-colons', '--show-keys', file), { log });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Sign `file` with the key into `out`: a detached armored signature, or a clear-signed copy. */
async function sign(
  how: '--detach-sign' | '--clearsign',
  home: string,
  fingerprint: string,
  file: string,
  out: string,
  log: Logger,
): Promise<void> {
  await rm(out, { force: true });
  const armor = how === '--detach-sign' ? ['--armor'] : [];
  await run(gpg(home, '--local-user', `${fingerprint}!`, ...armor, how, '--output', out, file), {
    log,
    tag: 'gpg',
  });
}

/** Detached, armored signature of `file` → `out`. */
export function detachSign(home: string, fingerprint: string, file: string, out: string, log: Logger) {
  return sign('--detach-sign', home, fingerprint, file, out, log);
}

/** Clear-signed copy of `file` → `out` (apt's InRelease). */
export function clearSign(home: string, fingerprint: string, file: string, out: string, log: Logger) {
  return sign('--clearsign', home, fingerprint, file, out, log);
}

/** A binary keyring (for gpgv, apt's signed-by, dnf) of every key file in keysDir. */
export async function keyringFromDir(keysDir: string, out: string, log: Logger): Promise<number> {
  const files = await trustRootFiles(keysDir, log);
  const parts: Buffer[] = [];
  const tmp = `${out}.dearmor-${process.pid}`;
  try {
    for (const { path, data } of files) {
      if (data.subarray(0, 5).toString() !== '-----') {
        parts.push(data);
        continue;
      }
      await rm(tmp, { force: true });
      await run(['gpg', '--batch', '--yes', '--dearmor', '--output', tmp, path], { log, tag: 'gpg' });
      parts.push(await readFile(tmp));
    }
  } finally {
    await rm(tmp, { force: true });
  }
  await writeFile(out, Buffer.concat(parts));
  return files.length;
}

const KEY_FILE = /\.(asc|gpg|pgp)$/;

function keysError(file: string, why: string, hint: string): UserError {
  return new UserError('E_KEYS', `${file} ${why}`, hint);
}

/**
 * The trust root, checked before anything is verified against it (fail closed): keys/ must be a
 * directory of public key files only — no secret key, no file that is not a key, no symlink, and
 * a file named after a fingerprint must hold that key. Hidden files (.gitkeep) are ignored.
 */
export async function trustRootFiles(
  keysDir: string,
  log: Logger,
): Promise<{ path: string; data: Buffer; keys: KeyInfo[] }[]> {
  if (!(await checkDirectory(keysDir, 'the trust root'))) {
    throw new UserError(
      'E_KEYS',
      `${keysDir} does not exist: there is no trust root to check signatures against`,
      'restore keys/ from the repository (git checkout keys/), or make a key with osbake keys init',
    );
  }
  const names = (await readdir(keysDir)).filter((f) => !f.startsWith('.')).sort();
  const out: { path: string; data: Buffer; keys: KeyInfo[] }[] = [];
  for (const f of names) {
    const path = join(keysDir, f);
    const hint =
      'keys/ holds public keys only: export one with gpg --armor --export FINGERPRINT > keys/FINGERPRINT.asc';
    if (!KEY_FILE.test(f))
      throw keysError(path, 'is not a key file (.asc, .gpg or .pgp)', `move it out of keys/; ${hint}`);
    const data = await readInputBytes(path, { what: 'key file', maxBytes: INPUT_CAPS.key, noSymlink: true });
    const listing = await showKeysColons(path, log).catch((err: unknown) => {
      if (!(err instanceof ProcessError)) throw err;
      throw keysError(path, 'is not an OpenPGP public key', `remove it; ${hint}`);
    });
    if (/^sec:/m.test(listing)) {
      throw keysError(
        path,
        'holds a SECRET key',
        'remove it at once and treat that key as exposed; keys/ is for public keys',
      );
    }
    const keys = parseColonKeys(listing);
    if (keys.length === 0) throw keysError(path, 'holds no OpenPGP public key', `remove it; ${hint}`);
    const named = /^([0-9A-Fa-f]{40})\.(asc|gpg|pgp)$/.exec(f)?.[1]?.toUpperCase();
    if (named && !keys.some((k) => k.fingerprint.toUpperCase() === named)) {
      throw keysError(
        path,
        `is named after ${named} but holds ${keys.map((k) => k.fingerprint).join(', ')}`,
        'export the right key into it, or name the file after the key it holds',
      );
    }
    out.push({ path, data, keys });
  }
  return out;
}

/** Check a detached signature with gpgv against a keyring file. */
export async function verifyDetached(
  keyring: string,
  signature: string,
  data: string,
  log: Logger,
): Promise<SignatureResult> {
  const out = await capture(['gpgv', '--status-fd', '1', '--keyring', keyring, signature, data], {
    log,
    tag: 'gpgv',
    okCodes: [1, 2],
  });
  return parseGpgvStatus(out);
}
