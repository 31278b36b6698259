/**
 * osbake publish against a real OpenSSH server on 127.0.0.1 with a throwaway non-root user and key:
 * a build, a release, host key checking, and an upload killed part-way that resumes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../src/config/project.js';
import { publishAfterBuild } from '../../src/publish/publish.js';
import { type FixtureStore, makeFixtureStore } from './fixture-store.js';
import { runCli, startCli } from './helpers.js';
import { startTestSshd, type TestSshd } from './sshd.js';

const IMAGE_BYTES = 48 * 1024 * 1024;

describe('osbake publish (real sshd + rsync)', () => {
  let sshd: TestSshd;
  let fx: FixtureStore;
  const auth = () => ['--known-hosts', sshd.knownHosts, '-i', sshd.clientKey];

  beforeAll(async () => {
    sshd = await startTestSshd();
    fx = await makeFixtureStore(IMAGE_BYTES);
  }, 120_000);
  afterAll(async () => {
    await sshd?.stop();
    await fx?.cleanup();
  });

  it('publishes a build as the non-root user: temporary name, sha256 checked, renamed', async () => {
    const b = fx.builds[0];
    if (!b) throw new Error('fixture');
    const r = await runCli(['publish', b.artifact, '--to', sshd.url, ...auth()], fx.dir);
    expect(r.stderr + r.stdout).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(`builds/${b.artifact}.qcow2: uploaded`);
    expect(r.stdout).toMatch(/sha256 verified on the mirror/);
    const listing = sshd.ssh(
      `cd ${sshd.mirror} && find . -type f | sort && stat -c '%U %n' builds/${b.artifact}.qcow2`,
    );
    expect(listing).toContain(`./builds/${b.artifact}.qcow2\n`);
    expect(listing).toContain(`./builds/${b.artifact}.qcow2.sha256\n`);
    expect(listing).toContain(`./builds/${b.artifact}.packages.tsv\n`);
    expect(listing).not.toMatch(/\.part/);
    expect(listing).toContain(`${sshd.user} builds/${b.artifact}.qcow2`);
    const remoteSum = sshd.ssh(`cd ${sshd.mirror}/builds && sha256sum -c ${b.artifact}.qcow2.sha256`);
    expect(remoteSum).toMatch(/: OK/);

    // Again: everything is already there with the right sha256, nothing is sent.
    const again = await runCli(['publish', b.artifact, '--to', sshd.url, ...auth()], fx.dir);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`present\\s+builds/${b.artifact}\\.qcow2`));
    expect(again.stdout).not.toMatch(/uploaded/);
  });

  it('checks the host key: an unknown or different key is refused', async () => {
    const b = fx.builds[0] as { artifact: string };
    const empty = join(sshd.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const r = await runCli(
      ['publish', b.artifact, '--to', sshd.url, '--known-hosts', empty, '-i', sshd.clientKey],
      fx.dir,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/osbake: error: the host key of 127\.0\.0\.1 is not in .* or does not match it/);
    expect(r.stderr).toMatch(/hint: .*ssh-keyscan -p \d+ 127\.0\.0\.1/);

    const wrong = join(sshd.dir, 'wrong_known_hosts');
    const other = readFileSync(`${sshd.clientKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ${other}\n`);
    const w = await runCli(
      ['publish', b.artifact, '--to', sshd.url, '--known-hosts', wrong, '-i', sshd.clientKey],
      fx.dir,
    );
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/host key of 127\.0\.0\.1/);
  });

  it('resumes an upload that was killed part-way, then verifies the sha256', async () => {
    const b = fx.builds[1];
    if (!b) throw new Error('fixture');
    const file = `builds/${b.artifact}.qcow2`;
    // 4 MiB/s: the 48 MiB image takes ~12 s; stop it once a quarter has gone up.
    const slow = startCli(['publish', b.artifact, '--to', sshd.url, ...auth(), '--bwlimit', '4096'], fx.dir);
    await slow.until(
      new RegExp(`upload ${file.replaceAll('.', '\\.')} · [\\d.]+ MiB / 48\\.0 MiB \\((2[5-9]|[3-9]\\d)%\\)`),
      60_000,
    );
    slow.child.kill('SIGTERM');
    const stopped = await slow.done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted by SIGTERM/);
    const partial = sshd
      .ssh(`cd ${sshd.mirror}/builds && ls -A; stat -c '%s' .rsync-partial/.${b.artifact}.qcow2.part`)
      .trim()
      .split('\n');
    const partialSize = Number(partial.at(-1));
    expect(partial).not.toContain(`${b.artifact}.qcow2`);
    expect(partialSize).toBeGreaterThan(IMAGE_BYTES / 8);
    expect(partialSize).toBeLessThan(IMAGE_BYTES);

    const resumed = await runCli(['publish', b.artifact, '--to', sshd.url, ...auth()], fx.dir);
    expect(resumed.code).toBe(0);
    const line = resumed.stdout.split('\n').find((l) => l.startsWith(`${file}:`)) ?? '';
    expect(line).toMatch(/resumed, sent [\d.]+ MiB of 48\.0 MiB, sha256 verified on the mirror/);
    const sent = Number(/sent ([\d.]+) MiB/.exec(line)?.[1]);
    console.info(`resume: partial on the mirror ${partialSize} of ${IMAGE_BYTES} bytes; second run: ${line}`);
    // Only what was missing went over the wire the second time.
    expect(sent * 1024 * 1024).toBeLessThan(IMAGE_BYTES - partialSize + 2 * 1024 * 1024);
    const check = sshd.ssh(
      `cd ${sshd.mirror}/builds && sha256sum ${b.artifact}.qcow2; ls -A .rsync-partial 2>/dev/null | wc -l`,
    );
    expect(check).toContain(`${b.sha256}  ${b.artifact}.qcow2`);
    expect(check.trim().split('\n').at(-1)).toBe('0');
  }, 180_000);

  it('kill -9 of osbake publish leaves no rsync or ssh running; the next publish resumes and completes', async () => {
    const b = fx.builds[1];
    if (!b) throw new Error('fixture');
    const file = `builds/${b.artifact}.qcow2`;
    sshd.ssh(`rm -rf ${sshd.mirror}/builds`);
    const slow = startCli(['publish', b.artifact, '--to', sshd.url, ...auth(), '--bwlimit', '4096'], fx.dir);
    await slow.until(
      new RegExp(`upload ${file.replaceAll('.', '\\.')} · [\\d.]+ MiB / 48\\.0 MiB \\([1-9]\\d?%\\)`),
      60_000,
    );
    const pid = slow.child.pid as number;
    const children = () =>
      execFileSync('ps', ['-eo', 'pid=,ppid=,comm='], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([, , comm]) => comm === 'rsync' || comm === 'ssh')
        .map(([p, pp, comm]) => ({ pid: Number(p), ppid: Number(pp), comm }));
    const mine = children().filter((c) => c.ppid === pid);
    expect(mine.map((c) => c.comm)).toContain('rsync');
    slow.child.kill('SIGKILL');
    await slow.done;
    // setpriv --pdeathsig: the uploads end with osbake (their own children, ssh, with them).
    let left = mine;
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const alive = new Set(children().map((c) => c.pid));
      left = mine.filter((c) => alive.has(c.pid));
    }
    expect(left).toEqual([]);
    const again = await runCli(['publish', b.artifact, '--to', sshd.url, ...auth()], fx.dir);
    expect(again.code, again.stderr).toBe(0);
    expect(sshd.ssh(`cd ${sshd.mirror}/builds && sha256sum ${b.artifact}.qcow2`)).toContain(b.sha256);
  }, 180_000);

  it('publishes a release with its patch bundle and releases/<R>.json last; osbake.yaml publish.to works', async () => {
    const cfg = join(fx.dir, 'osbake.yaml');
    writeFileSync(
      cfg,
      `${readFileSync(cfg, 'utf8')}\npublish:\n  to: ${sshd.url}\n  knownHosts: ${sshd.knownHosts}\n  identityFile: ${sshd.clientKey}\n`,
    );
    const r = await runCli(['publish', '--release', '2026.11'], fx.dir);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const order = r.stdout
      .split('\n')
      .filter((l) => /^(uploaded|resumed|present)\s/.test(l))
      .map((l) => l.split(/\s+/)[1]);
    expect(order.at(-1)).toBe('releases/2026.11.json');
    expect(order).toContain(fx.bundle.path);
    expect(order).toContain(`${fx.bundle.path}.sha256`);
    expect(order.indexOf(`${fx.bundle.path}.sha256`)).toBeLessThan(order.indexOf(fx.bundle.path));
    const sums = sshd.ssh(`cd ${sshd.mirror} && sha256sum ${fx.bundle.path} && cat releases/2026.11.json`);
    expect(sums).toContain(`${fx.bundle.sha256}  ${fx.bundle.path}`);
    expect(JSON.parse(sums.slice(sums.indexOf('{'))).release).toBe('2026.11');
  });

  it('after a build: uploads to publish.to unless --no-publish (publishAfterBuild, as run-build calls it)', async () => {
    // osbake.yaml has the publish section from the test before.
    const project = await loadProject(fx.dir);
    const b = fx.builds[2] as { artifact: string; sha256: string };
    const lines: string[] = [];
    const out = { write: (t: string) => lines.push(t) > 0 };
    expect(await publishAfterBuild(project, b.artifact, { skip: true, out })).toBeUndefined();
    expect(sshd.ssh(`ls ${sshd.mirror}/builds`)).not.toContain(b.artifact);
    const results = await publishAfterBuild(project, b.artifact, { out });
    expect(results?.map((r) => [r.rel, r.status])).toEqual([
      [`builds/${b.artifact}.qcow2.sha256`, 'uploaded'],
      [`builds/${b.artifact}.packages.tsv`, 'uploaded'],
      [`builds/${b.artifact}.qcow2`, 'uploaded'],
    ]);
    expect(lines.join('')).toMatch(/--no-publish skips this/);
    expect(sshd.ssh(`sha256sum ${sshd.mirror}/builds/${b.artifact}.qcow2`)).toContain(b.sha256);
  });

  it('says what is missing without a mirror or with a bad URL', async () => {
    const p = await makeFixtureStore(1024);
    try {
      const none = await runCli(['publish', p.builds[0]?.artifact ?? ''], p.dir);
      expect(none.code).toBe(1);
      expect(none.stderr).toBe(
        'osbake: error: no mirror to publish to [E_NO_MIRROR]\nhint: pass --to ssh://user@host/path or set publish.to in osbake.yaml\n',
      );
      const bad = await runCli(['publish', 'debian12-base', '--to', 'http://x/y'], p.dir);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/http:\/\/x\/y is not an ssh:\/\/ mirror URL/);
    } finally {
      await p.cleanup();
    }
  });
});
