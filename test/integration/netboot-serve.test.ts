/**
 * osbake serve --netboot without a VM, the real CLI with both engines: a stick made with the real
 * tools (sfdisk, mkfs.ext4 -d, zstd) is recorded as release r1's installer; the server reads its
 * files out of it with debugfs, checks them, and serves the iPXE scripts, the files (ranges, nginx
 * sending them itself), reports and /api/netboot; it refuses, before serving, an unknown release
 * and a stick that is not as recorded. The VM side (iPXE, the installer) is in usb-installer.test.ts;

 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, git, makeProject, runCli, startCli, type TempProject } from './helpers.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const NODE = '52:54:00:0c:00:01';

let project: TempProject;
let work: string;
let stickFile: string;
const content = { vmlinuz: randomBytes(300_000), initrd: randomBytes(200_000) };
let payload: Buffer;
let rangesText: string;

/** A stick as osbake builds it, made by hand with the same tools: DOS label, FAT-typed ESP, ext4 data. */
async function makeStick(dir: string): Promise<string> {
  const c = join(dir, 'content');
  await mkdir(join(c, 'boot'), { recursive: true });
  await mkdir(join(c, 'osbake'), { recursive: true });
  await writeFile(join(c, 'boot/vmlinuz'), content.vmlinuz);
  await writeFile(join(c, 'boot/initrd.img'), content.initrd);
  // Three ranges of a disk: 4 KiB at 0, 3 MiB at 1 MiB, 5 KiB at 1 GiB.
  const parts = [randomBytes(4096), randomBytes(3 * 2 ** 20), randomBytes(5000)];
  const offsets = [0, 2 ** 20, 2 ** 30];
  payload = Buffer.concat(parts);
  rangesText = `# offset length sha256\n${parts.map((p, i) => `${offsets[i]} ${p.length} ${sha(p)}\n`).join('')}`;
  await writeFile(join(c, 'osbake/payload.ranges'), rangesText);
  await writeFile(join(dir, 'payload.bin'), payload);
  execFileSync('zstd', ['-q', '-f', join(dir, 'payload.bin'), '-o', join(c, 'osbake/payload.zst')]);
  const zst = await readFile(join(c, 'osbake/payload.zst'));
  await writeFile(
    join(c, 'osbake/SHA256SUMS'),
    `${sha(zst)}  payload.zst\n${sha(rangesText)}  payload.ranges\n`,
  );
  await writeFile(join(c, 'osbake/image.txt'), 'build=debian12-base-r1-main-0123abcd\nraw_size=8589934592\n');
  const stick = join(dir, 'stick.raw');
  execFileSync('truncate', ['-s', '64M', stick]);
  execFileSync('sfdisk', ['--quiet', stick], {
    input: 'label: dos\nstart=2048, size=16384, type=ef\nstart=18432, type=83\n',
  });
  execFileSync('mkfs.ext4', [
    '-q',
    '-F',
    '-L',
    'OSBAKE-USB',
    '-E',
    `offset=${18432 * 512}`,
    '-d',
    c,
    stick,
    `${(131072 - 18432) / 2}k`,
  ]);
  return stick;
}

async function recordRelease(dir: string, stick: string): Promise<void> {
  const name = 'usb-installer-r1-main-0123abcd.raw';
  await mkdir(join(dir, 'store/builds'), { recursive: true });
  execFileSync('cp', ['--sparse=always', stick, join(dir, 'store/builds', name)]);
  const bytes = await readFile(stick);
  await writeFile(
    join(dir, 'manifest.yaml'),
    [
      'releases:',
      '  r1:',
      '    date: "2026-11-30"',
      `    git_commit: ${git(dir, 'rev-parse', 'HEAD')}`,
      '    artifacts:',
      '      - name: usb-installer',
      '        kind: installer',
      `        path: builds/${name}`,
      `        sha256: ${sha(bytes)}`,
      `        size: ${bytes.length}`,
      '',
    ].join('\n'),
  );
}

function http(
  port: number,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: o.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'osbake-netboot-'));
  project = await makeProject({
    extraConfig: `netboot:\n  unknown: refuse\n  kernelArgs: quiet\n  nodes:\n    "${NODE.toUpperCase()}":\n      hostname: rack1-n01\n      target: sda\n      then: reboot\n`,
  });
  stickFile = await makeStick(work);
  await recordRelease(project.dir, stickFile);
}, 120_000);

afterAll(async () => {
  await project?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('osbake serve --netboot', () => {
  it('refuses, before serving, an unknown release and an installer that is not as recorded', async () => {
    const none = await runCli(['serve', '--netboot', 'r9', '--port', '0'], project.dir);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/E_NO_RELEASE|no release r9/i);
    // One byte of the stored stick changed (where nothing reads it): its SHA-256 is not the recorded one.
    const stored = join(project.dir, 'store/builds/usb-installer-r1-main-0123abcd.raw');
    const good = await readFile(stored);
    const bad = Buffer.from(good);
    bad[600] = (bad[600] ?? 0) ^ 1;
    await writeFile(stored, bad);
    try {
      const altered = await runCli(['serve', '--netboot', '--port', '0'], project.dir);
      expect(altered.code).not.toBe(0);
      expect(altered.stderr).toMatch(/E_VERIFY/);
      expect(altered.stderr).toContain('the installer of release r1 is not as recorded');
    } finally {
      await writeFile(stored, good);
    }
  });

  for (const engine of ['node', 'nginx'] as const) {
    it(`serves the release's installer and payload to nodes (--engine ${engine})`, async () => {
      const port = await freePort();
      const serve = startCli(['serve', '--netboot', '--port', String(port), '--engine', engine], project.dir);
      try {
        await serve.until(/netboot: nodes boot/, 120_000);
        expect(serve.output()).toContain('netboot: release r1 (debian12-base-r1-main-0123abcd, 3 ranges');
        const host = { Host: `10.0.2.2:${port}` };
        // The first script chains to the node's own, by MAC; the URLs are the Host the node asked.
        const chain = await http(port, 'GET', '/netboot/boot.ipxe', { headers: host });
        expect(chain.status).toBe(200);
        expect(chain.body.toString()).toContain(
          `chain http://10.0.2.2:${port}/netboot/boot.ipxe?mac=\${netX/mac}`,
        );
        const own = (
          await http(port, 'GET', `/netboot/boot.ipxe?mac=${NODE}`, { headers: host })
        ).body.toString();
        expect(own).toContain(`kernel http://10.0.2.2:${port}/netboot/r1/vmlinuz initrd=initrd.img`);
        expect(own).toContain(
          `osbake.mac=${NODE} osbake.target=/dev/sda osbake.hostname=rack1-n01 osbake.then=reboot`,
        );
        expect(own).toMatch(/ quiet\n/);
        // A Host that would put something else into the script is refused.
        expect((await http(port, 'GET', '/netboot/boot.ipxe', { headers: { Host: 'a b' } })).status).toBe(
          400,
        );
        // Unknown nodes are refused (unknown: refuse) and listed as such.
        const unknown = (
          await http(port, 'GET', '/netboot/boot.ipxe?mac=52:54:00:0c:00:99', { headers: host })
        ).body;
        expect(unknown.toString()).toContain('is not a node of this server');
        expect((await http(port, 'GET', '/netboot/boot.ipxe?mac=nonsense', { headers: host })).status).toBe(
          400,
        );
        // The files: the stick's own kernel and initrd, the payload with byte ranges.
        const k = await http(port, 'GET', '/netboot/r1/vmlinuz');
        expect(k.status).toBe(200);
        expect(sha(k.body)).toBe(sha(content.vmlinuz));
        expect(sha((await http(port, 'GET', '/netboot/r1/initrd.img')).body)).toBe(sha(content.initrd));
        expect((await http(port, 'GET', '/netboot/r1/payload.ranges')).body.toString()).toBe(rangesText);
        const r = await http(port, 'GET', '/netboot/r1/payload.bin', {
          headers: { Range: 'bytes=4000-1048999' },
        });
        expect(r.status).toBe(206);
        expect(r.headers['content-range']).toBe(`bytes 4000-1048999/${payload.length}`);
        expect(r.body.equals(payload.subarray(4000, 1049000))).toBe(true);
        if (engine === 'nginx') expect(String(r.headers.server)).toMatch(/^nginx/);
        // Nothing else is under /netboot/: other files, other releases, traversal, the cache's own names.
        for (const p of [
          '/netboot/r1/payload.zst',
          '/netboot/r2/vmlinuz',
          '/netboot/r1/../r1/vmlinuz',
          '/netboot/r1/',
          '/netboot/x',
        ])
          expect((await http(port, 'GET', p)).status, p).toBe(404);
        expect((await http(port, 'GET', '/netboot/r1/SHA256SUMS.asc')).status).toBe(404); // the stick is unsigned
        // Reports: form-encoded, small, from nodes of this server.
        const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
        const post = (body: string, headers: Record<string, string> = form) =>
          http(port, 'POST', '/netboot/report', { headers, body });
        expect((await post(`mac=${NODE}&state=booted`)).status).toBe(200);
        expect((await post(`mac=${NODE}&state=writing&percent=40`)).status).toBe(200);
        expect((await post(`mac=${NODE}&state=failed&message=disk+error&log=line1%0Aline2`)).status).toBe(
          200,
        );
        expect((await post(`mac=${NODE}&state=booted`, { 'Content-Type': 'application/json' })).status).toBe(
          415,
        );
        expect((await post(`mac=${NODE}&state=nope`)).status).toBe(400);
        expect((await post('mac=52:54:00:0c:00:99&state=booted')).status).toBe(403);
        expect((await post(`mac=${NODE}&state=booted&log=${'x'.repeat(200_000)}`)).status).toBe(413);
        expect((await http(port, 'GET', '/netboot/report')).status).toBe(405);
        const api = JSON.parse((await http(port, 'GET', '/api/netboot')).body.toString()) as {
          release: string;
          nodes: {
            mac: string;
            state: string;
            message?: string;
            log?: string;
            hostname?: string;
            address?: string;
            events: { state: string }[];
          }[];
        };
        expect(api.release).toBe('r1');
        const n = api.nodes.find((x) => x.mac === NODE);
        expect(n).toMatchObject({
          state: 'failed',
          message: 'disk error',
          log: 'line1\nline2',
          hostname: 'rack1-n01',
          address: '127.0.0.1',
        });
        expect(n?.events.map((e) => e.state)).toEqual(
          expect.arrayContaining(['booted', 'writing', 'failed']),
        );
        expect(api.nodes.find((x) => x.mac === '52:54:00:0c:00:99')?.state).toBe('refused');
        const page = (await http(port, 'GET', '/')).body.toString();
        expect(page).toContain('<h2 id="netboot">Network installs</h2>');
        expect(page).toContain('disk error');
        // done → the node boots from its disk; reinstall → it installs again.
        expect((await post(`mac=${NODE}&state=done`)).status).toBe(200);
        expect(
          (await http(port, 'GET', `/netboot/boot.ipxe?mac=${NODE}`, { headers: host })).body.toString(),
        ).toContain('booting from its disk');
        const re = await runCli(['netboot', 'reinstall', NODE.replaceAll(':', '-')], project.dir);
        expect(re.code, re.stderr).toBe(0);
        expect(
          (await http(port, 'GET', `/netboot/boot.ipxe?mac=${NODE}`, { headers: host })).body.toString(),
        ).toContain('kernel ');
        const nodes = await runCli(['netboot', 'nodes', '--json'], project.dir);
        expect(JSON.parse(nodes.stdout).find((x: { mac: string }) => x.mac === NODE).state).toBe('reinstall');
      } finally {
        serve.child.kill('SIGINT');
        await serve.done;
      }
    });
  }
});
