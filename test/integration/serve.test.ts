/**
 * osbake serve, the real CLI on a loopback port over a store of real files: byte ranges, If-Range,
 * ETag, HEAD, 405, traversal in many encodings, symlinks out of the root, listings, .sha256
 * sidecars, a 5 GiB (sparse) file, the JSON API, osbake verify --mirror, graceful shutdown, and
 * the page in real headless Chromium.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawStatusLine } from '../fixtures/raw-http.js';
import { type FixtureStore, makeFixtureStore, writeRandomFile } from './fixture-store.js';
import { CLI, freePort, REPO, runCli, startCli } from './helpers.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw HTTP request: the path goes out exactly as given (fetch would normalize "..", "\\"). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const FIVE_GIB = 5 * 1024 ** 3;

// Both engines get the whole suite: nginx in front (the default where nginx is installed) and
// osbake's own server alone.
describe.each(['nginx', 'node'])(
  'osbake serve --engine %s (real server, real files, real Chromium)',
  (engine) => {
    let fx: FixtureStore;
    let server: ReturnType<typeof startCli>;
    let base: string;
    let imagePath: string;
    let image: Buffer;
    const temps: string[] = [];

    beforeAll(async () => {
      fx = await makeFixtureStore(3 * 1024 * 1024);
      const b = fx.builds[1];
      if (!b) throw new Error('fixture');
      imagePath = `/builds/${b.artifact}.qcow2`;
      image = readFileSync(join(fx.store, imagePath));
      // A symlink inside the root is fine; two that leave it are not.
      symlinkSync(`${b.artifact}.qcow2`, join(fx.store, 'builds/latest.qcow2'));
      symlinkSync('/etc', join(fx.store, 'builds/etc-link'));
      symlinkSync('/etc/passwd', join(fx.store, 'builds/passwd-link'));
      writeFileSync(join(fx.store, 'builds/.hidden.partial-1'), 'temporary');
      symlinkSync('.hidden.partial-1', join(fx.store, 'builds/to-hidden'));
      // 5 GiB without using 5 GiB of disk: lengths and ranges past 4 GiB.
      mkdirSync(join(fx.store, 'big'));
      writeFileSync(join(fx.store, 'big/huge.raw'), '');
      truncateSync(join(fx.store, 'big/huge.raw'), FIVE_GIB);
      await writeRandomFile(join(fx.store, 'big/slow.bin'), 64 * 1024 * 1024);
      const port = await freePort();
      // Its own process group, as from a shell: the graceful-stop test sends Ctrl-C to the group.
      server = startCli(['serve', '--port', String(port), '--engine', engine], fx.dir, {}, { group: true });
      await server.until(/serving .* at http:\/\/127\.0\.0\.1:\d+\//, 30_000);
      base = `http://127.0.0.1:${port}`;
    }, 120_000);

    afterAll(async () => {
      if (server && server.child.exitCode === null) {
        server.child.kill('SIGTERM');
        await server.done;
      }
      await fx?.cleanup();
      for (const t of temps) rmSync(t, { recursive: true, force: true });
    });

    it('serves a whole file with its length and type, and HEAD without a body', async () => {
      const r = await raw(base, 'GET', imagePath);
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(image.length));
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.headers['accept-ranges']).toBe('bytes');
      expect(sha(r.body)).toBe(fx.builds[1]?.sha256);
      const h = await raw(base, 'HEAD', imagePath);
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toBe(String(image.length));
      expect(h.headers.etag).toBe(r.headers.etag);
      expect(h.body.length).toBe(0);
      const viaLink = await raw(base, 'GET', '/builds/latest.qcow2');
      expect(viaLink.status).toBe(200);
      expect(sha(viaLink.body)).toBe(fx.builds[1]?.sha256);
    });

    it('answers byte ranges with 206, honours If-Range and conditional GET', async () => {
      const r = await raw(base, 'GET', imagePath, { Range: 'bytes=1000-1999' });
      expect(r.status).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes 1000-1999/${image.length}`);
      expect(r.headers['content-length']).toBe('1000');
      expect(r.body.equals(image.subarray(1000, 2000))).toBe(true);
      const suffix = await raw(base, 'GET', imagePath, { Range: 'bytes=-10' });
      expect(suffix.status).toBe(206);
      expect(suffix.body.equals(image.subarray(image.length - 10))).toBe(true);
      const bad = await raw(base, 'GET', imagePath, { Range: `bytes=${image.length + 5}-` });
      expect(bad.status).toBe(416);
      expect(bad.headers['content-range']).toBe(`bytes */${image.length}`);

      const etag = String(r.headers.etag);
      const same = await raw(base, 'GET', imagePath, { Range: 'bytes=0-9', 'If-Range': etag });
      expect(same.status).toBe(206);
      expect(same.body.length).toBe(10);
      const stale = await raw(base, 'GET', imagePath, { Range: 'bytes=0-9', 'If-Range': 'W/"stale"' });
      expect(stale.status).toBe(200);
      expect(stale.body.length).toBe(image.length);
      const notModified = await raw(base, 'GET', imagePath, { 'If-None-Match': etag });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
    });

    it('gives the right length and ranges for a 5 GiB file', async () => {
      const h = await raw(base, 'HEAD', '/big/huge.raw');
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toBe(String(FIVE_GIB));
      const tail = await raw(base, 'GET', '/big/huge.raw', { Range: `bytes=${FIVE_GIB - 100}-` });
      expect(tail.status).toBe(206);
      expect(tail.headers['content-range']).toBe(`bytes ${FIVE_GIB - 100}-${FIVE_GIB - 1}/${FIVE_GIB}`);
      expect(tail.body.length).toBe(100);
    });

    it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])(
      'refuses %s with 405 and Allow',
      async (method) => {
        const r = await raw(base, method, imagePath);
        expect(r.status).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      },
    );

    it.each([
      '/../etc/passwd',
      '/builds/../../etc/passwd',
      '/%2e%2e/etc/passwd',
      '/%2E%2E/%2E%2E/etc/passwd',
      '/builds/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/..%2fetc%2fpasswd',
      '/.%2e/etc/passwd',
      '/%252e%252e/etc/passwd',
      '/%25252e%25252e/etc/passwd',
      '/builds/..%5c..%5cetc%5cpasswd',
      '/builds/..\\..\\etc\\passwd',
      '/%c0%ae%c0%ae/etc/passwd',
      '/%e0%80%ae%e0%80%ae/etc/passwd',
      '/builds/%00/../../etc/passwd',
      '/builds/x.qcow2%00.sha256',
      '//etc/passwd',
      '/builds//../../etc/passwd',
      '/%',
      '/builds/etc-link/passwd',
      '/builds/passwd-link',
      '/builds/passwd-link.sha256',
      '/builds/.hidden.partial-1',
      '/builds/%2ehidden.partial-1',
      '/builds/to-hidden',
      '/builds/to-hidden.sha256',
      '/builds/.hidden.partial-1.sha256',
    ])('never leaves the root: %s', async (path) => {
      const r = await raw(base, 'GET', path);
      expect([400, 403, 404]).toContain(r.status);
      expect(r.body.toString()).not.toMatch(/root:x:0:0/);
    });

    it('refuses CONNECT, a duplicate Host and an empty Host (raw requests)', async () => {
      const port = Number(new URL(base).port);
      const status = (text: string) => rawStatusLine(port, text);
      // CONNECT to a proxy's authority (host:port): 400 from both (nginx's parser refuses it so).
      expect(await status('CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n')).toBe(
        'HTTP/1.1 400 Bad Request',
      );
      // CONNECT with a path: 405, from both.
      expect(await status('CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
      expect(await status(`GET ${imagePath} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`)).toBe(
        'HTTP/1.1 400 Bad Request',
      );
      expect(await status(`GET ${imagePath} HTTP/1.1\r\nHost: \r\n\r\n`)).toBe('HTTP/1.1 400 Bad Request');
      expect(await status('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request');
    });

    it('answers Host values, absolute targets and HTTP versions as nginx does (both engines alike)', async () => {
      const port = Number(new URL(base).port);
      const status = (text: string) => rawStatusLine(port, text);
      const get = (host: string) => `GET ${imagePath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      for (const bad of ['a b', 'a..b', 'a/b', '.', 'a\x01b']) {
        expect(await status(get(bad)), JSON.stringify(bad)).toBe('HTTP/1.1 400 Bad Request');
      }
      for (const good of ['osbake.example.org', 'node:8080', '[::1]:80', '10.0.0.1', 'a.']) {
        expect(await status(get(good)), good).toBe('HTTP/1.1 200 OK');
      }
      // The absolute form (RFC 9112 3.2.2) is served; an HTTP/2.0 request line is 505.
      expect(await status(`GET http://a${imagePath} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)).toBe(
        'HTTP/1.1 200 OK',
      );
      expect(await status(`GET ${imagePath} HTTP/2.0\r\nHost: a\r\n\r\n`)).toBe(
        'HTTP/1.1 505 HTTP Version Not Supported',
      );
      // HTTP/0.9 (no version, no headers): refused at once, the connection not left waiting.
      const t0 = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1');
        let buf = '';
        const timer = setTimeout(() => {
          s.destroy();
          resolve(`no answer: ${buf}`);
        }, 5000);
        s.on('data', (d) => {
          buf += d.toString();
        });
        s.on('close', () => {
          clearTimeout(timer);
          resolve(buf);
        });
        s.write(`GET ${imagePath}\r\n`);
      });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(answer).toMatch(/400 Bad Request/);
      expect(answer).not.toContain(image.subarray(0, 64).toString());
    });

    it("answers a recorded file's .sha256 from the record, not from a sidecar changed beside it", async () => {
      const b = fx.builds[0] as { artifact: string; sha256: string };
      const sidecar = join(fx.store, `builds/${b.artifact}.qcow2.sha256`);
      const before = readFileSync(sidecar, 'utf8');
      writeFileSync(sidecar, `${'0'.repeat(64)}  ${b.artifact}.qcow2\n`);
      try {
        const r = await raw(base, 'GET', `/builds/${b.artifact}.qcow2.sha256`);
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe(`${b.sha256}  ${b.artifact}.qcow2\n`);
        await server.until(/differs from the recorded SHA-256; answering the record/, 10_000);
      } finally {
        writeFileSync(sidecar, before);
      }
    });

    it('refuses symlinks that leave the root with 403', async () => {
      expect((await raw(base, 'GET', '/builds/passwd-link')).status).toBe(403);
      expect((await raw(base, 'GET', '/builds/etc-link/passwd')).status).toBe(403);
    });

    it('lists directories (without dotfiles or escaping links) and redirects to the slash', async () => {
      const redirect = await raw(base, 'GET', '/builds');
      expect(redirect.status).toBe(301);
      expect(redirect.headers.location).toBe('/builds/');
      const r = await raw(base, 'GET', '/builds/');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      const html = r.body.toString();
      for (const b of fx.builds) expect(html).toContain(`href="/builds/${b.artifact}.qcow2"`);
      expect(html).toContain('href="/builds/latest.qcow2"');
      expect(html).not.toContain('.hidden');
      expect(html).not.toContain('etc-link');
      expect(html).not.toContain('passwd-link');
      expect(html).not.toContain('to-hidden');
      const rootListing = (await raw(base, 'GET', '/repos/Debian12/')).body.toString();
      expect(rootListing).toContain(`${fx.bundle.id}.tar.zst`);
    });

    it('serves stored .sha256 sidecars and computes missing ones', async () => {
      const b = fx.builds[1] as { artifact: string; sha256: string };
      const stored = await raw(base, 'GET', `${imagePath}.sha256`);
      expect(stored.status).toBe(200);
      expect(stored.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(stored.body.toString()).toBe(`${b.sha256}  ${b.artifact}.qcow2\n`);
      const tsv = readFileSync(join(fx.store, `builds/${b.artifact}.packages.tsv`));
      const computed = await raw(base, 'GET', `/builds/${b.artifact}.packages.tsv.sha256`);
      expect(computed.status).toBe(200);
      expect(computed.body.toString()).toBe(`${sha(tsv)}  ${b.artifact}.packages.tsv\n`);
      const json = await raw(base, 'GET', '/releases/2026.11.json');
      expect(json.headers['content-type']).toBe('application/json');
      expect(JSON.parse(json.body.toString()).release).toBe('2026.11');
    });

    it('has a JSON API: releases newest first with the package diff, builds clean and dirty', async () => {
      const rel = JSON.parse((await raw(base, 'GET', '/api/releases')).body.toString());
      expect(rel.source).toBe('project');
      expect(rel.releases.map((r: { name: string }) => r.name)).toEqual(['2026.11', '2026.10']);
      const [nov] = rel.releases;
      expect(nov.previous).toBe('2026.10');
      expect(nov.artifacts.map((a: { kind: string }) => a.kind)).toEqual(['image', 'patch-bundle']);
      expect(nov.artifacts[1]).toMatchObject({
        sha256: fx.bundle.sha256,
        size: fx.bundle.size,
        present: true,
      });
      const d = nov.diff[0];
      expect(d.added.map((p: { name: string }) => p.name)).toEqual(['htop']);
      expect(d.removed.map((p: { name: string }) => p.name)).toEqual(['curl']);
      expect(d.changed).toEqual([
        { name: 'openssl', arch: 'amd64', from: '3.0.14-1~deb12u2', to: '3.0.15-1~deb12u1' },
      ]);

      const builds = JSON.parse((await raw(base, 'GET', '/api/builds')).body.toString()).builds;
      expect(builds.map((b: { artifact: string; clean: boolean }) => [b.artifact, b.clean])).toEqual([
        [fx.builds[2]?.artifact, false],
        [fx.builds[1]?.artifact, true],
        [fx.builds[0]?.artifact, true],
      ]);
      expect(builds[0].diff_base).toEqual({ release: '2026.11', artifact: fx.builds[1]?.artifact });
      expect(builds[0].diff.added.map((p: { name: string }) => p.name)).toEqual(['curl', 'tmux']);
    });

    it('is what osbake verify --mirror checks, also from outside the project', async () => {
      const inside = await runCli(['verify', '2026.11', '--mirror', base], fx.dir);
      expect(inside.code).toBe(0);
      expect(inside.stdout).toMatch(/all 2 artifact\(s\) of release 2026\.11 verified/);
      const elsewhere = mkdtempSync(join(tmpdir(), 'osbake-noproject-'));
      temps.push(elsewhere);
      const outside = await runCli(['verify', '2026.10', '--mirror', base], elsewhere);
      expect(outside.code).toBe(0);
      expect(outside.stdout).toMatch(/artifact list from http:\/\/127\.0\.0\.1:\d+\/api\/releases/);
      expect(outside.stdout).toMatch(/all 1 artifact\(s\) of release 2026\.10 verified/);
      const unknown = await runCli(['verify', '2099.1', '--mirror', base], elsewhere);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/no release "2099\.1" on http/);
    });

    it('renders the page in headless Chromium: release table, builds, copy button', async () => {
      const userData = mkdtempSync(join(tmpdir(), 'osbake-chromium-'));
      // A new, empty profile (playwright passes it to Chromium as --user-data-dir).
      const context = await chromium.launchPersistentContext(userData, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        viewport: { width: 1280, height: 900 },
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        timeout: 60_000,
      });
      try {
        await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
        const page = await context.newPage();
        // How fast the page loads is measured in bench/serve.sh, not asserted here.
        const res = await page.goto(`${base}/`, { waitUntil: 'load', timeout: 30_000 });
        expect(res?.status()).toBe(200);
        const releases = await page
          .locator('#release-table tbody.release')
          .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.release));
        expect(releases).toEqual(['2026.11', '2026.10']);
        const nov = page.locator('tbody[data-release="2026.11"]');
        await expect.poll(() => nov.locator('tr.artifact').count()).toBe(2);
        const bundleRow = nov.locator('tr.artifact[data-kind="patch-bundle"]');
        expect(await bundleRow.textContent()).toContain(fx.bundle.id);
        expect(await bundleRow.locator('a[download]').getAttribute('href')).toBe(`/${fx.bundle.path}`);
        expect(await nov.locator('details.diff summary').first().textContent()).toMatch(
          /debian12-base vs 2026\.10: \+1 −1 ~1/,
        );
        await expect.poll(() => page.locator('tr.build td.dirty').count()).toBe(1);
        await expect.poll(() => page.locator('tr.build td.clean').count()).toBe(2);

        await bundleRow.locator('button.copy').click();
        await expect.poll(() => bundleRow.locator('button.copy').textContent()).toBe('copied');
        expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(fx.bundle.sha256);

        // The package list of a build opens in place.
        const build = page.locator(`tr.build[data-artifact="${fx.builds[1]?.artifact}"]`);
        await build.locator('details.packages summary').click();
        await expect
          .poll(() => build.locator('details.packages table tr').count())
          .toBe(1 + (fx.builds[1]?.packages.length ?? 0));

        // The release diff opens in place too (and shows in the screenshot).
        await nov.locator('details.diff summary').first().click();
        expect(await nov.locator('details.diff li.chg').textContent()).toBe(
          '~ openssl 3.0.14-1~deb12u2 → 3.0.15-1~deb12u1 (amd64)',
        );

        mkdirSync(join(REPO, 'test-results'), { recursive: true });
        const shot = join(REPO, 'test-results', 'serve-page.png');
        await page.screenshot({ path: shot, fullPage: true });
        expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
      } finally {
        await context.close();
        rmSync(userData, { recursive: true, force: true });
      }
    }, 120_000);

    it('serves a bare store (no project) from store/releases/*.json', async () => {
      const elsewhere = mkdtempSync(join(tmpdir(), 'osbake-noproject-'));
      temps.push(elsewhere);
      const port = await freePort();
      // One process (no workers): the other path of runServe.
      const bare = startCli(
        ['serve', '--root', fx.store, '--port', String(port), '--workers', '1', '--engine', engine],
        elsewhere,
      );
      try {
        await bare.until(/serving .* \(data: store\/releases/, 30_000);
        const rel = JSON.parse(
          (await raw(`http://127.0.0.1:${port}`, 'GET', '/api/releases')).body.toString(),
        );
        expect(rel.source).toBe('store');
        expect(rel.releases.map((r: { name: string }) => r.name)).toEqual(['2026.11', '2026.10']);
        const builds = JSON.parse(
          (await raw(`http://127.0.0.1:${port}`, 'GET', '/api/builds')).body.toString(),
        );
        expect(builds.builds.find((b: { clean: boolean }) => !b.clean)?.artifact).toBe(
          fx.builds[2]?.artifact,
        );
      } finally {
        bare.child.kill('SIGTERM');
        expect((await bare.done).code).toBe(0);
      }
    });

    it.runIf(engine === 'node')(
      'runs worker processes that share the port; a worker that dies is replaced',
      async () => {
        const port = await freePort();
        const srv = startCli(
          ['serve', '--root', fx.store, '--port', String(port), '--workers', '3', '--engine', 'node'],
          fx.dir,
        );
        try {
          await srv.until(/serving .*; 3 workers\); Ctrl-C stops/, 30_000);
          const workerPids = () =>
            execFileSync('pgrep', ['-P', String(srv.child.pid)], { encoding: 'utf8' })
              .trim()
              .split('\n')
              .map(Number);
          const pids = workerPids();
          expect(pids).toHaveLength(3);
          process.kill(pids[0] as number, 'SIGKILL');
          await srv.until(new RegExp(`worker ${pids[0]} exited \\(SIGKILL\\); starting another`), 10_000);
          // Whichever worker takes them, requests keep being answered.
          for (let i = 0; i < 12; i++) {
            const r = await raw(`http://127.0.0.1:${port}`, 'GET', imagePath);
            expect(sha(r.body)).toBe(fx.builds[1]?.sha256);
          }
          await expect.poll(() => workerPids().length, { timeout: 10_000 }).toBe(3);
          // A second server on the same port fails once, with one line, not once per worker (either engine).
          for (const other of ['node', 'nginx']) {
            const clash = await runCli(
              ['serve', '--root', fx.store, '--port', String(port), '--workers', '3', '--engine', other],
              fx.dir,
            );
            expect(clash.code).toBe(1);
            expect(clash.stderr).toBe(
              `osbake: error: cannot listen on 127.0.0.1:${port}: EADDRINUSE [E_LISTEN]\nhint: pick another --port, or stop what is using it\n`,
            );
          }
        } finally {
          srv.child.kill('SIGTERM');
        }
        const end = await srv.done;
        expect(end.code).toBe(0);
        expect(end.stdout).toMatch(/SIGTERM: stopping .*\n(.*\n)*stopped\n$/);
        expect(end.stdout.match(/"GET \/builds\/\S+\.qcow2" 200 /g)).toHaveLength(12);
      },
    );

    it.runIf(engine === 'nginx')(
      'leaves no nginx behind when osbake itself is killed (SIGKILL)',
      async () => {
        const port = await freePort();
        const srv = startCli(
          ['serve', '--root', fx.store, '--port', String(port), '--engine', 'nginx'],
          fx.dir,
        );
        await srv.until(/nginx [\d.]+ sends the files/, 30_000);
        const nginxPid = Number(
          execFileSync('pgrep', ['-P', String(srv.child.pid), '-x', 'nginx'], { encoding: 'utf8' }).trim(),
        );
        expect(nginxPid).toBeGreaterThan(1);
        // nginx rewrites its process title ("nginx: master process /usr/sbin/nginx -c … -p DIR …").
        const title = readFileSync(`/proc/${nginxPid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        const nginxDir = /\s-p\s+(\S+)/.exec(title)?.[1] ?? '';
        expect(nginxDir).toMatch(/^\/\S+\/osbake-nginx-\w+$/);
        expect(existsSync(nginxDir)).toBe(true);
        srv.child.kill('SIGKILL');
        await srv.done;
        const alive = () => {
          try {
            process.kill(nginxPid, 0);
            return true;
          } catch {
            return false;
          }
        };
        await expect.poll(alive, { timeout: 10_000 }).toBe(false);
        await expect(raw(`http://127.0.0.1:${port}`, 'GET', '/')).rejects.toThrow(/ECONNREFUSED/);
        // Its working directory stays (no one left to remove it); the next nginx engine to start removes
        // it once it is a minute old. Here: by hand.
        rmSync(nginxDir, { recursive: true });
      },
    );

    it('Ctrl-C (SIGINT to the process group) stops gracefully: a download in flight completes, new connections are refused', async () => {
      const expected = sha(readFileSync(join(fx.store, 'big/slow.bin')));
      const u = new URL(base);
      const download = new Promise<{ sha: string; length: number }>((resolve, reject) => {
        const req = request(
          { host: u.hostname, port: u.port, path: '/big/slow.bin', agent: false },
          (res) => {
            const hash = createHash('sha256');
            let length = 0;
            res.once('data', (c: Buffer) => {
              hash.update(c);
              length += c.length;
              res.pause();
              // As a terminal's Ctrl-C: every process of the foreground group gets SIGINT (nginx,
              // in a group of its own, must not: its SIGINT is a fast stop that cuts downloads).
              process.kill(-(server.child.pid as number), 'SIGINT');
              setTimeout(() => {
                res.on('data', (d: Buffer) => {
                  hash.update(d);
                  length += d.length;
                });
                res.resume();
              }, 1000);
            });
            res.on('end', () => resolve({ sha: hash.digest('hex'), length }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
      await server.until(/SIGINT: stopping/, 10_000);
      await expect(raw(base, 'GET', '/')).rejects.toThrow(/ECONNREFUSED|ECONNRESET/);
      const got = await download;
      expect(got.length).toBe(64 * 1024 * 1024);
      expect(got.sha).toBe(expected);
      const end = await server.done;
      expect(end.code).toBe(0);
      expect(end.stdout).toMatch(/stopped\n$/);
      // Every request was logged, one line each.
      expect(end.stdout).toMatch(new RegExp(`"GET ${imagePath.replaceAll('.', '\\.')}" 206 1000 `));
      expect(end.stdout).toMatch(/"POST \/builds\/\S+" 405/);
      expect(end.stdout).toMatch(/"GET \/big\/slow\.bin" 200 67108864 /);
    });
  },
);

/** Can an unprivileged user (nobody) run the CLI from where the tests are? Not when the repo is private. */
function nobodyCanRunCli(): boolean {
  try {
    execFileSync(
      'setpriv',
      [...NOBODY, process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CLI)})`],
      {
        stdio: 'ignore',
      },
    );
    return true;
  } catch {
    return false;
  }
}

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe('osbake serve as an unprivileged user: what it may not read is 403, without a path', () => {
  it.runIf(nobodyCanRunCli())(
    'answers 403 "forbidden" for an unreadable file, directory and .sha256',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'osbake-perm-'));
      try {
        chmodSync(dir, 0o755);
        const store = join(dir, 'store');
        mkdirSync(join(store, 'builds'), { recursive: true, mode: 0o755 });
        chmodSync(store, 0o755);
        chmodSync(join(store, 'builds'), 0o755);
        writeFileSync(join(store, 'builds/open.raw'), 'anyone may read this\n', { mode: 0o644 });
        writeFileSync(join(store, 'builds/secret.raw'), 'root only\n', { mode: 0o600 });
        mkdirSync(join(store, 'private'), { mode: 0o700 });
        writeFileSync(join(store, 'private/inside.raw'), 'root only\n', { mode: 0o644 });
        const port = await freePort();
        const child = spawn(
          'setpriv',
          [
            ...NOBODY,
            process.execPath,
            CLI,
            'serve',
            '--root',
            store,
            '--port',
            String(port),
            '--engine',
            'node',
            '--workers',
            '1',
          ],
          {
            cwd: dir,
            env: { ...process.env, CI: 'true', HOME: dir, OSBAKE_LOG_DIR: dir },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
        });
        try {
          const base = `http://127.0.0.1:${port}`;
          for (let i = 0; i < 100 && !/serving /.test(out); i++) await new Promise((r) => setTimeout(r, 100));
          expect(out).toMatch(/serving /);
          expect((await raw(base, 'GET', '/builds/open.raw')).status).toBe(200);
          for (const path of [
            '/builds/secret.raw',
            '/builds/secret.raw.sha256',
            '/private/',
            '/private/inside.raw',
          ]) {
            const r = await raw(base, 'GET', path);
            expect(r.status, path).toBe(403);
            expect(r.body.toString(), path).toBe('forbidden\n');
            expect(JSON.stringify(r.headers)).not.toContain(dir);
          }
        } finally {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('close', r));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
