/**
 * `osbake keys init` (a project signing key made offline, its public key exported into keys/,
 * signing.key set in osbake.yaml when unset) and `osbake keys list` (the trust root).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { parseDocument } from 'yaml';
import { writeFileAtomically } from '../config/atomic.js';
import { loadProject } from '../config/project.js';
import { UserError } from '../errors.js';
import { capture } from '../exec/run.js';
import { createNullLogger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { exportPublicKey, generateKey, type KeyInfo, parseColonKeys, trustRootFiles } from './gpg.js';
import { gnupgHome, KEYS_DIR, keyFileName, keysDir } from './project-keys.js';

const EXPIRE_RE = /^(never|\d{1,6}[dwmy]?)$/;

/** A key lifetime gpg takes as meant: never, or 1 day to 100 years (pure). */
export function expireOk(expire: string): boolean {
  if (!EXPIRE_RE.test(expire)) return false;
  if (expire === 'never') return true;
  const n = Number.parseInt(expire, 10);
  const last = expire.at(-1) ?? 'd';
  const unit = /\d/.test(last) ? 1 : { d: 1, w: 7, m: 31, y: 366 }[last as 'd' | 'w' | 'm' | 'y'];
  const perDay = n * unit;
  return perDay >= 1 && perDay <= 100 * 366;
}

/** osbake.yaml with signing.key set, comments and the rest kept (pure). */
export function setSigningKey(yamlText: string, fingerprint: string): string {
  const doc = parseDocument(yamlText);
  doc.setIn(['signing', 'key'], fingerprint);
  return doc.toString();
}

export async function runKeysInit(o: {
  projectDir: string;
  uid?: string;
  expire?: string;
  gnupgHome?: string;
  out?: TextOut;
}): Promise<string> {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const log = createNullLogger();
  const expire = o.expire ?? '3y';
  if (!expireOk(expire)) {
    throw new UserError(
      'E_USAGE',
      `--expire ${expire} is not a period from 1 day to 100 years`,
      'use e.g. 2y, 18m, 365d or never (gpg reads a bare 0 as "never": say never)',
    );
  }
  const uid = o.uid ?? `osbake release signing (${basename(project.root)})`;
  if (/[\n:<>]/.test(uid.replace(/<[^<>\s]+@[^<>\s]+>$/, ''))) {
    throw new UserError(
      'E_USAGE',
      `--uid ${JSON.stringify(uid)} is not a user id`,
      'e.g. "Cluster OS releases <ops@example.org>"',
    );
  }
  const home = o.gnupgHome ?? gnupgHome(project);
  const fpr = await generateKey(home, uid, expire, log);
  const dir = keysDir(project);
  await mkdir(dir, { recursive: true });
  const file = join(dir, keyFileName(fpr));
  await writeFileAtomically(file, await exportPublicKey(home, fpr, log));
  const rel = (p: string) => relative(process.cwd(), p) || p;
  out.write(`made ${fpr} "${uid}" (ed25519, expires: ${expire}) in ${home}\n`);
  out.write(`public key: ${rel(file)} (commit it: it is what releases are verified against)\n`);
  const current = project.config.signing.key;
  if (!current) {
    await writeFileAtomically(project.file, setSigningKey(await readFile(project.file, 'utf8'), fpr));
    out.write(`signing.key set in ${rel(project.file)}: osbake release signs from now on\n`);
  } else {
    out.write(
      `signing.key is still ${current}: set it to ${fpr} in ${rel(project.file)} to sign with the new key (keep the old public key for old releases)\n`,
    );
  }
  const revocation = join(home, 'openpgp-revocs.d', `${fpr}.rev`);
  out.write(
    `back up the secret key (gpg --homedir ${home} --export-secret-keys --armor ${fpr}) and ${existsSync(revocation) ? revocation : 'a revocation certificate'} offline\n`,
  );
  return fpr;
}

export interface ListedKey extends KeyInfo {
  file: string;
  /** The secret key is in the signing GnuPG home. */
  secret: boolean;
  /** signing.key names it. */
  signing: boolean;
}

export async function runKeysList(o: {
  projectDir: string;
  json?: boolean;
  out?: TextOut;
}): Promise<ListedKey[]> {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const log = createNullLogger();
  const dir = keysDir(project);
  const home = gnupgHome(project);
  const secrets = new Set(
    parseColonKeys(
      await capture(
        ['gpg', '--batch', '--no-tty', '--homedir', home, '--with-colons', '--list-secret-keys'],
        {
          log,
          okCodes: [2],
        },
      ).catch(() => ''),
    ).map((k) => k.fingerprint),
  );
  const listed: ListedKey[] = [];
  // The trust root as every check reads it: a doubtful keys/ is an error here too (fail closed).
  const files = existsSync(dir) || project.config.signing.key ? await trustRootFiles(dir, log) : [];
  for (const { path, keys } of files) {
    for (const k of keys) {
      listed.push({
        ...k,
        file: `${KEYS_DIR}/${basename(path)}`,
        secret: secrets.has(k.fingerprint),
        signing: k.fingerprint === project.config.signing.key,
      });
    }
  }
  if (o.json) {
    out.write(`${JSON.stringify(listed, null, 2)}\n`);
    return listed;
  }
  if (listed.length === 0) {
    out.write(`no keys in ${KEYS_DIR}/: osbake keys init makes the project's signing key\n`);
    return listed;
  }
  const day = (d?: Date) => (d ? d.toISOString().slice(0, 10) : 'never');
  out.write(
    formatTable(
      ['FINGERPRINT', 'USER ID', 'CREATED', 'EXPIRES', 'STATE', 'FILE'],
      listed.map((k) => [
        k.fingerprint,
        k.uid,
        day(k.created),
        day(k.expires),
        [
          k.revoked ? 'revoked' : k.expired ? 'expired' : 'valid',
          k.signing ? 'signing key' : '',
          k.secret ? 'secret here' : '',
        ]
          .filter(Boolean)
          .join(', '),
        k.file,
      ]),
    ),
  );
  return listed;
}
