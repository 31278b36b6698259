/**
 * The project's keys: keys/<FINGERPRINT>.asc in the repository is the trust root every check
 * verifies against; signing.key in osbake.yaml names the key that signs, its secret in
 * signing.gnupgHome (default $GNUPGHOME, else ~/.gnupg) — never in the repository.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { describeSignature, keyringFromDir, type SignatureResult, verifyDetached } from './gpg.js';

export const KEYS_DIR = 'keys';

export function keysDir(project: Pick<Project, 'root'>): string {
  return join(project.root, KEYS_DIR);
}

/** keys/<FINGERPRINT>.asc (pure). */
export function keyFileName(fingerprint: string): string {
  return `${fingerprint.toUpperCase()}.asc`;
}

export function gnupgHome(project: Pick<Project, 'root' | 'config'>): string {
  const configured = project.config.signing.gnupgHome;
  if (configured) return resolve(project.root, configured.replace(/^~(?=\/|$)/, homedir()));
  return process.env.GNUPGHOME ?? join(homedir(), '.gnupg');
}

export interface SigningKey {
  fingerprint: string;
  home: string;
}

/**
 * The key that signs, or undefined when signing is off. Its public key must be in keys/ (else
 * nobody could verify what it signs): checked here, before any work.
 */
export function signingKeyOf(project: Project): SigningKey | undefined {
  const fingerprint = project.config.signing.key;
  if (!fingerprint) return undefined;
  if (!existsSync(join(keysDir(project), keyFileName(fingerprint)))) {
    throw new UserError(
      'E_SIGNING_KEY',
      `signing.key ${fingerprint} has no public key ${KEYS_DIR}/${keyFileName(fingerprint)} in the repository`,
      `export it there (gpg --armor --export ${fingerprint} > ${KEYS_DIR}/${keyFileName(fingerprint)}) and commit it`,
    );
  }
  return { fingerprint, home: gnupgHome(project) };
}

/** Run fn with a keyring made of keys/ (the trust root); undefined keyring when keys/ is empty. */
export async function withTrustKeyring<T>(
  dir: string,
  log: Logger,
  fn: (keyring: string | undefined) => Promise<T>,
): Promise<T> {
  const tmp = await mkdtemp(join(tmpdir(), 'osbake-keyring-'));
  try {
    const keyring = join(tmp, 'trust.gpg');
    const n = await keyringFromDir(dir, keyring, log);
    return await fn(n > 0 ? keyring : undefined);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Check a signature against the trust root; 'unsigned' when there is no signature file. */
export async function checkSignature(
  keyring: string | undefined,
  signature: string | undefined,
  data: string,
  log: Logger,
): Promise<SignatureResult> {
  if (!signature || !existsSync(signature)) return { status: 'unsigned' };
  if (!keyring) return { status: 'error', reason: `no keys in ${KEYS_DIR}/ to check it against` };
  return verifyDetached(keyring, signature, data, log);
}

/** The error for a signature that is not good (or unsigned when signing is required). */
export function signatureError(what: string, r: SignatureResult): UserError {
  return new UserError(
    r.status === 'unsigned' ? 'E_UNSIGNED' : 'E_SIGNATURE',
    `${what}: ${describeSignature(r)}`,
    r.status === 'unsigned'
      ? 'sign it (set signing.key, then osbake release R again), or set signing.required: false'
      : r.status === 'unknown-key'
        ? `add the signer's public key to ${KEYS_DIR}/ only if you trust it`
        : 'do not use these files: get them again from the release source',
  );
}
