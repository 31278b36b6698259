/**
 * Signed releases with the real gpg and gpgv: osbake keys init, release R signing R.json and
 * R.SHA256SUMS, and verify reporting good, bad (R.json or SHA256SUMS altered), unknown key,
 * expired key and unsigned (an error with signing.required).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEntry } from '../../test/fixtures/build-entry.js';
import { loadReleases } from '../config/releases.js';
import { parseGpgvStatus } from '../signing/gpg.js';
import { runKeysInit, runKeysList, setSigningKey } from '../signing/run-keys.js';
import { runRelease } from './run-release.js';
import { runVerify } from './run-verify.js';

const sha = (b: string) => createHash('sha256').update(b).digest('hex');
const silent = { write: () => true };
const noProgress = { start() {}, add() {}, end() {} };
const R = '2026.12';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'osbake-sign-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A project with one image build in the store; its own GnuPG home (never the user's). */
async function makeProject(name: string, yaml = 'store: store\n') {
  const root = join(work, name);
  await mkdir(join(root, 'images/img'), { recursive: true });
  await writeFile(join(root, 'osbake.yaml'), `${yaml}signing:\n  gnupgHome: gnupg\n`);
  await writeFile(join(root, 'images/img/image.yaml'), 'name: img\ndistro: debian\n');
  await mkdir(join(root, 'store/builds'), { recursive: true });
  await writeFile(join(root, 'store/builds/img-1.qcow2'), 'image one');
  const manifest = {
    builds: [buildEntry({ image: 'img', artifact: 'img-1', time: 100, content: 'image one', release: R })],
    last_run_uuid: 'u',
  };
  await writeFile(join(root, 'images/img/manifest.json'), JSON.stringify(manifest));
  return root;
}

const release = (root: string) =>
  runRelease({
    projectDir: root,
    release: R,
    force: true,
    out: silent,
    progress: noProgress,
    gitCommit: 'f'.repeat(40),
    now: new Date('2026-12-01T10:00:00Z'),
  });

async function verify(root: string) {
  let text = '';
  const out = {
    write: (s: string) => {
      text += s;
      return true;
    },
  };
  try {
    await runVerify({ projectDir: root, release: R, out, progress: noProgress });
    return { ok: true, text };
  } catch (err) {
    return { ok: false, text, err: err as { code?: string; message: string } };
  }
}

describe('keys and signed releases (real gpg, gpgv)', () => {
  let root = '';
  let fpr = '';

  beforeAll(async () => {
    root = await makeProject('signed');
    fpr = await runKeysInit({ projectDir: root, uid: 'Test Releases <rel@example.org>', out: silent });
  }, 60_000);

  it('keys init: an ed25519 key, its public key in keys/<FPR>.asc, signing.key set', async () => {
    expect(fpr).toMatch(/^[0-9A-F]{40}$/);
    const pub = await readFile(join(root, 'keys', `${fpr}.asc`), 'utf8');
    expect(pub).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(await readFile(join(root, 'osbake.yaml'), 'utf8')).toContain(`key: ${fpr}`);
    const listed = await runKeysList({ projectDir: root, out: silent });
    expect(listed).toMatchObject([
      {
        fingerprint: fpr,
        uid: 'Test Releases <rel@example.org>',
        signing: true,
        secret: true,
        expired: false,
      },
    ]);
    // No secret key material in the repository.
    expect(pub).not.toMatch(/PRIVATE/);
  });

  it('release signs R.json and R.SHA256SUMS and records the signer; verify says who signed', async () => {
    await release(root);
    const rel = (await loadReleases({ root })).releases[R];
    expect(rel?.signed_by).toBe(fpr);
    const dir = join(root, 'store/releases');
    for (const f of [`${R}.json.asc`, `${R}.SHA256SUMS.asc`]) {
      expect(await readFile(join(dir, f), 'utf8')).toMatch(/^-----BEGIN PGP SIGNATURE-----/);
    }
    expect(await readFile(join(dir, `${R}.SHA256SUMS`), 'utf8')).toBe(
      `${sha('image one')}  builds/img-1.qcow2\n`,
    );
    // sha256sum -c from the store's root, as a user would.
    expect(
      execFileSync('sha256sum', ['-c', `releases/${R}.SHA256SUMS`], { cwd: join(root, 'store') }).toString(),
    ).toContain('builds/img-1.qcow2: OK');
    const v = await verify(root);
    expect(v.ok, v.err?.message).toBe(true);
    expect(v.text).toContain(
      `signature: release ${R}: good signature by Test Releases <rel@example.org> (${fpr})`,
    );
  });

  it('the server shows who signed (page and /api/releases), and a bad signature as such', async () => {
    const { loadCatalog } = await import('../serve/catalog.js');
    const { renderIndexPage } = await import('../serve/page.js');
    const { loadProject } = await import('../config/project.js');
    const project = await loadProject(root);
    const good = await loadCatalog({ storeDir: project.storeDir, project });
    expect(good.releases[0]?.signature).toEqual({
      status: 'good',
      fingerprint: fpr,
      signer: 'Test Releases <rel@example.org>',
      text: `signed by Test Releases <rel@example.org> ${fpr}`,
    });
    expect(renderIndexPage(good)).toContain(`signed by Test Releases &lt;rel@example.org&gt; ${fpr}`);
    const file = join(root, `store/releases/${R}.SHA256SUMS`);
    const text = await readFile(file, 'utf8');
    try {
      await writeFile(file, `${text}# altered\n`);
      const bad = await loadCatalog({ storeDir: project.storeDir, project });
      expect(bad.releases[0]?.signature.status).toBe('bad');
      expect(renderIndexPage(bad)).toMatch(/data-signature="bad">· BAD signature/);
    } finally {
      await writeFile(file, text);
    }
  });

  it('verify --mirror checks the signatures the mirror serves (osbake serve), good and altered', async () => {
    const { startArtifactServer } = await import('../serve/server.js');
    const srv = await startArtifactServer({ storeDir: join(root, 'store'), port: 0, accessLog: false });
    const file = join(root, `store/releases/${R}.json`);
    const good = await readFile(file, 'utf8');
    try {
      let text = '';
      const out = {
        write: (s: string) => {
          text += s;
          return true;
        },
      };
      await runVerify({ projectDir: root, release: R, mirror: srv.url, out, progress: noProgress });
      expect(text).toContain(
        `signature: release ${R}: good signature by Test Releases <rel@example.org> (${fpr})`,
      );
      await writeFile(file, good.replace('"date": "2026-12-01"', '"date": "2026-12-03"'));
      await expect(
        runVerify({ projectDir: root, release: R, mirror: srv.url, out: silent, progress: noProgress }),
      ).rejects.toMatchObject({
        code: 'E_SIGNATURE',
        message: expect.stringMatching(new RegExp(`release ${R} in ${srv.url}: BAD signature`)),
      });
    } finally {
      await writeFile(file, good);
      await srv.close();
    }
  });

  it('refuses an R.json altered after signing (bad signature), before any checksum', async () => {
    const file = join(root, `store/releases/${R}.json`);
    const good = await readFile(file, 'utf8');
    try {
      await writeFile(file, good.replace('"date": "2026-12-01"', '"date": "2026-12-02"'));
      const v = await verify(root);
      expect(v.ok).toBe(false);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toMatch(/BAD signature \(claims Test Releases/);
      expect(v.text).not.toMatch(/verifying 1 artifact/);
    } finally {
      await writeFile(file, good);
    }
  });

  it('a file in keys/ that is not a key: verify names it; the page says the signature is not checkable', async () => {
    const bad = join(root, 'keys', 'zz-broken.asc');
    await writeFile(
      bad,
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\nbroken\n-----END PGP PUBLIC KEY BLOCK-----\n',
    );
    try {
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toContain(`${bad} is not an OpenPGP public key`);
      const { loadCatalog } = await import('../serve/catalog.js');
      const { loadProject } = await import('../config/project.js');
      const project = await loadProject(root);
      const c = await loadCatalog({ storeDir: project.storeDir, project });
      expect(c.releases[0]?.signature.status).toBe('error');
    } finally {
      await rm(bad, { force: true });
    }
  });

  it('refuses an altered R.SHA256SUMS', async () => {
    const file = join(root, `store/releases/${R}.SHA256SUMS`);
    const good = await readFile(file, 'utf8');
    try {
      await writeFile(
        file,
        good.replace(/^[0-9a-f]/, (c) => (c === '0' ? '1' : '0')),
      );
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toMatch(/BAD signature/);
    } finally {
      await writeFile(file, good);
    }
    expect((await verify(root)).ok).toBe(true);
  });

  it('refuses a release signed by a key that is not in keys/ (unknown key)', async () => {
    const other = await makeProject('other-key');
    await runKeysInit({ projectDir: other, uid: 'Somebody Else', out: silent });
    await release(other);
    // The signatures of the other project's key, put on this project's release files.
    const dir = join(root, 'store/releases');
    const before = await readFile(join(dir, `${R}.json.asc`), 'utf8');
    const beforeSums = await readFile(join(dir, `${R}.SHA256SUMS.asc`), 'utf8');
    const otherDir = join(other, 'store/releases');
    try {
      // Same content (same inputs), other signer.
      expect(await readFile(join(otherDir, `${R}.json`), 'utf8')).not.toBe(''); // sanity
      await writeFile(join(dir, `${R}.json`), await readFile(join(otherDir, `${R}.json`), 'utf8'));
      await writeFile(join(dir, `${R}.json.asc`), await readFile(join(otherDir, `${R}.json.asc`), 'utf8'));
      await writeFile(
        join(dir, `${R}.SHA256SUMS.asc`),
        await readFile(join(otherDir, `${R}.SHA256SUMS.asc`), 'utf8'),
      );
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toMatch(/signed by a key that is not in the repository's keys\//);
    } finally {
      await writeFile(join(dir, `${R}.json.asc`), before);
      await writeFile(join(dir, `${R}.SHA256SUMS.asc`), beforeSums);
      await release(root);
    }
  });

  it('fails closed: no keys/, a secret key or a misnamed key in keys/, signatures removed while manifest.yaml says signed_by', async () => {
    const keys = join(root, 'keys');
    const moved = join(work, 'keys-moved');
    const { rename, copyFile } = await import('node:fs/promises');
    // No keys/ at all: the signed release is refused, not "not checked"; --skip-signature says so.
    await rename(keys, moved);
    try {
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toMatch(/no keys\/ directory \(the trust root\)/);
      let text = '';
      await runVerify({
        projectDir: root,
        release: R,
        progress: noProgress,
        skipSignature: true,
        out: {
          write: (t: string) => {
            text += t;
            return true;
          },
        },
      });
      expect(text).toContain('signature NOT CHECKED (--skip-signature)');
    } finally {
      await rename(moved, keys);
    }
    expect((await verify(root)).ok).toBe(true);
    // A secret key among the public ones.
    const secret = join(keys, 'leaked.asc');
    execFileSync('sh', [
      '-c',
      `gpg --batch --homedir '${join(root, 'gnupg')}' --armor --export-secret-keys ${fpr} > '${secret}'`,
    ]);
    try {
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toContain(`${secret} holds a SECRET key`);
    } finally {
      await rm(secret, { force: true });
    }
    // A file named after one fingerprint holding another key.
    const misnamed = join(keys, `${'A'.repeat(40)}.asc`);
    await copyFile(join(keys, `${fpr}.asc`), misnamed);
    try {
      const v = await verify(root);
      expect(v.err?.message).toContain(`is named after ${'A'.repeat(40)} but holds ${fpr}`);
    } finally {
      await rm(misnamed, { force: true });
    }
    // The signature files deleted: manifest.yaml still says who signed, so this is not "unsigned".
    const dir = join(root, 'store/releases');
    const sigs = [`${R}.json.asc`, `${R}.SHA256SUMS.asc`];
    for (const f of sigs) await rename(join(dir, f), join(work, f));
    try {
      const v = await verify(root);
      expect(v.err?.code).toBe('E_SIGNATURE');
      expect(v.err?.message).toContain(`records it signed by ${fpr}, but its signature files are missing`);
    } finally {
      for (const f of sigs) await rename(join(work, f), join(dir, f));
    }
    expect((await verify(root)).ok).toBe(true);
  });

  it('refuses a release signed by an expired key', async () => {
    const old = await makeProject('expired');
    const home = join(old, 'gnupg');
    await mkdir(home, { recursive: true, mode: 0o700 });
    const past = (...a: string[]) =>
      execFileSync('gpg', ['--batch', '--homedir', home, '--faked-system-time', '20200101T000000!', ...a], {
        stdio: 'pipe',
      });
    past(
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--quick-gen-key',
      'Old Key',
      'ed25519',
      'sign',
      '1y',
    );
    const colons = execFileSync('gpg', ['--batch', '--homedir', home, '--with-colons', '--list-keys'], {
      encoding: 'utf8',
    });
    const oldFpr = /^fpr:+([0-9A-F]{40}):/m.exec(colons)?.[1] as string;
    await mkdir(join(old, 'keys'), { recursive: true });
    execFileSync('sh', [
      '-c',
      `gpg --batch --homedir ${home} --armor --export ${oldFpr} > ${join(old, 'keys', `${oldFpr}.asc`)}`,
    ]);
    // Released unsigned (a key that has expired cannot sign), then signed as it was in 2020.
    await release(old);
    const dir = join(old, 'store/releases');
    for (const f of [`${R}.json`, `${R}.SHA256SUMS`]) {
      execFileSync(
        'gpg',
        [
          '--batch',
          '--homedir',
          home,
          '--faked-system-time',
          '20200601T000000!',
          '--armor',
          '--detach-sign',
          '--output',
          join(dir, `${f}.asc`),
          join(dir, f),
        ],
        { stdio: 'pipe' },
      );
    }
    const v = await verify(old);
    expect(v.err?.code).toBe('E_SIGNATURE');
    expect(v.err?.message).toMatch(/signed by an expired key: Old Key/);
  });

  it('with signing.required: an unsigned release is an error for release and for verify', async () => {
    const req = await makeProject('required', 'store: store\n');
    await release(req); // no key yet: unsigned
    const yaml = await readFile(join(req, 'osbake.yaml'), 'utf8');
    await writeFile(join(req, 'osbake.yaml'), yaml.replace('signing:\n', 'signing:\n  required: true\n'));
    const v = await verify(req);
    expect(v.err?.code).toBe('E_UNSIGNED');
    expect(v.err?.message).toMatch(/unsigned/);
    await expect(release(req)).rejects.toMatchObject({ code: 'E_UNSIGNED' });
    // Without required, unsigned is said, not an error.
    await writeFile(join(req, 'osbake.yaml'), yaml);
    const ok = await verify(req);
    expect(ok.ok).toBe(true);
    expect(ok.text).toContain(`signature: release ${R} is unsigned`);
    expect(existsSync(join(req, `store/releases/${R}.json.asc`))).toBe(false);
  });

  it('refuses to sign with a key whose secret is not here, before any work', async () => {
    const p = await makeProject('nosecret');
    await mkdir(join(p, 'keys'), { recursive: true });
    await writeFile(join(p, 'keys', `${fpr}.asc`), await readFile(join(root, 'keys', `${fpr}.asc`), 'utf8'));
    await writeFile(
      join(p, 'osbake.yaml'),
      setSigningKey(await readFile(join(p, 'osbake.yaml'), 'utf8'), fpr),
    );
    await expect(release(p)).rejects.toMatchObject({ code: 'E_SIGNING_KEY' });
    expect(existsSync(join(p, 'manifest.yaml'))).toBe(false);
    await appendFile(join(p, 'osbake.yaml'), '');
  });
});

describe('keyringFromDir', () => {
  it('names a file in keys/ that is not a key, as a user error', async () => {
    const { keyringFromDir } = await import('../signing/gpg.js');
    const { createNullLogger } = await import('../log/logger.js');
    const dir = join(work, 'badkeys');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'bad.asc'),
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\ngarbage\n-----END PGP PUBLIC KEY BLOCK-----\n',
    );
    await expect(keyringFromDir(dir, join(work, 'bad.gpg'), createNullLogger())).rejects.toMatchObject({
      code: 'E_KEYS',
      message: expect.stringContaining(`${join(dir, 'bad.asc')} is not an OpenPGP public key`),
    });
  });
});

describe('parseGpgvStatus', () => {
  it.each([
    [
      '[GNUPG:] GOODSIG ABCD Name\n[GNUPG:] VALIDSIG F00 2026-11-30',
      { status: 'good', fingerprint: 'F00', uid: 'Name' },
    ],
    ['[GNUPG:] BADSIG ABCD Name <n@x>', { status: 'bad', uid: 'Name <n@x>' }],
    [
      '[GNUPG:] ERRSIG ABCD 22 8 00 1 9 F00\n[GNUPG:] NO_PUBKEY ABCD',
      { status: 'unknown-key', keyId: 'ABCD' },
    ],
    [
      '[GNUPG:] EXPKEYSIG ABCD Old\n[GNUPG:] VALIDSIG F00 x',
      { status: 'expired-key', fingerprint: 'F00', uid: 'Old' },
    ],
    [
      '[GNUPG:] REVKEYSIG ABCD Gone\n[GNUPG:] VALIDSIG F00 x',
      { status: 'revoked-key', fingerprint: 'F00', uid: 'Gone' },
    ],
    ['[GNUPG:] NODATA 1', { status: 'error', reason: 'not an OpenPGP signature' }],
  ])('%j', (text, result) => {
    expect(parseGpgvStatus(text)).toEqual(result);
  });
});
