/**
 * osbake serve --netboot without a VM, the real CLI with both engines: a stick made with the real
 * tools (sfdisk, mkfs.ext4 -d, zstd) is recorded as release r1's installer; the server reads its
 * files out of it with debugfs, checks them, and serves the iPXE scripts, the files (ranges, nginx
 * sending them itself), reports and /api/netboot; it refuses, before serving, an unknown release
 * and a stick that is not as recorded; and the dnsmasq proxy-DHCP path with real dnsmasq and iPXE.
 * The installs themselves (iPXE, the installer) are in usb-installer.test.ts.

 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firmwareArgs, OVMF } from '../../src/builders/boot-test/qemu-args.js';
import type { NetbootView } from '../../src/netboot/netboot.js';
import {
  CLI,
  debianSignedNetChain,
  freePort,
  git,
  makeProject,
  REPO,
  runCli,
  SHARED_WORK_DIR,
  startCli,
  TEST_LOG_DIR,
  type TempProject,
} from './helpers.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const NODE = '52:54:00:0c:00:01';

let project: TempProject;
let work: string;
let stickFile: string;
const content = { vmlinuz: randomBytes(300_000), initrd: randomBytes(200_000) };
let payload: Buffer;
let zst: Buffer;
let piecesText: string;
let rangesText: string;
let stickSha = '';

/** A stick as osbake builds it, made by hand with the same tools: DOS label, FAT-typed ESP, ext4 data. */
async function makeStick(dir: string): Promise<string> {
  const c = join(dir, 'content');
  await mkdir(join(c, 'boot'), { recursive: true });
  await mkdir(join(c, 'osbake'), { recursive: true });
  await writeFile(join(c, 'boot/vmlinuz'), content.vmlinuz);
  await writeFile(join(c, 'boot/initrd.img'), content.initrd);
  // Debian's signed shim and grubnetx64, as osbake's stick carries them for the Secure Boot chain.
  const chain = debianSignedNetChain();
  await mkdir(join(c, 'boot/netboot'), { recursive: true });
  await copyFile(chain.shim, join(c, 'boot/netboot/bootx64.efi'));
  await copyFile(chain.grubNet, join(c, 'boot/netboot/grubx64.efi'));
  // Three ranges of a disk: 4 KiB at 0, 3 MiB at 1 MiB, 5 KiB at 1 GiB.
  const parts = [randomBytes(4096), randomBytes(3 * 2 ** 20), randomBytes(5000)];
  const offsets = [0, 2 ** 20, 2 ** 30];
  payload = Buffer.concat(parts);
  rangesText = `# offset length sha256\n${parts.map((p, i) => `${offsets[i]} ${p.length} ${sha(p)}\n`).join('')}`;
  await writeFile(join(c, 'osbake/payload.ranges'), rangesText);
  // One zstd frame per piece (here: per range), concatenated, and the list of where each is.
  const frames = parts.map((p) => execFileSync('zstd', ['-q', '-c'], { input: p, maxBuffer: 2 ** 26 }));
  zst = Buffer.concat(frames);
  let at = 0;
  piecesText = `# pieces\n${frames
    .map((f, i) => {
      const line = `${offsets[i]} ${parts[i]?.length} ${at} ${f.length} ${sha(f)}\n`;
      at += f.length;
      return line;
    })
    .join('')}`;
  await writeFile(join(c, 'osbake/payload.zst'), zst);
  await writeFile(join(c, 'osbake/payload.pieces'), piecesText);
  await writeFile(
    join(c, 'osbake/SHA256SUMS'),
    `${sha(zst)}  payload.zst\n${sha(rangesText)}  payload.ranges\n${sha(piecesText)}  payload.pieces\n`,
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
  stickSha = sha(bytes);
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

/** The page's "Network installs" section in headless Chromium: the failed node, its log lines. */
async function checkPageInChromium(port: number): Promise<void> {
  const context = await chromium.launchPersistentContext(await mkdtemp(join(work, 'chromium-')), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      ...['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'],
      ...['--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ],
    timeout: 60_000,
  });
  try {
    const page = await context.newPage();
    const res = await page.goto(`http://127.0.0.1:${port}/#netboot`, { waitUntil: 'load', timeout: 30_000 });
    expect(res?.status()).toBe(200);
    const row = page.locator(`table.netboot tr.node[data-mac="${NODE}"]`);
    expect(await row.getAttribute('data-state')).toBe('failed');
    expect(await row.locator('td').nth(1).textContent()).toBe('rack1-n01');
    await row.locator('details summary').click();
    await expect.poll(() => row.locator('details pre').isVisible()).toBe(true);
    expect(await row.locator('details pre').textContent()).toBe('line1\nline2');
    await page.screenshot({ path: join(REPO, 'test-results', 'netboot-page.png'), fullPage: true });
  } finally {
    await context.close();
  }
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
  if (stickSha)
    await rm(join(SHARED_WORK_DIR, 'cache', 'netboot', stickSha.slice(0, 32)), {
      recursive: true,
      force: true,
    });
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
        expect((await http(port, 'GET', '/netboot/r1/payload.pieces')).body.toString()).toBe(piecesText);
        // The payload as on the stick (compressed, one frame per piece), with byte ranges: a piece
        // fetched on its own decompresses to its range.
        const second = piecesText.split('\n')[2]?.split(' ') ?? [];
        const [zOff, zLen] = [Number(second[2]), Number(second[3])];
        const r = await http(port, 'GET', '/netboot/r1/payload.zst', {
          headers: { Range: `bytes=${zOff}-${zOff + zLen - 1}` },
        });
        expect(r.status).toBe(206);
        expect(r.headers['content-range']).toBe(`bytes ${zOff}-${zOff + zLen - 1}/${zst.length}`);
        expect(sha(r.body)).toBe(second[4]);
        expect(
          execFileSync('zstd', ['-q', '-d', '-c'], { input: r.body, maxBuffer: 2 ** 26 }).equals(
            payload.subarray(4096, 4096 + 3 * 2 ** 20),
          ),
        ).toBe(true);
        if (engine === 'nginx') expect(String(r.headers.server)).toMatch(/^nginx/);
        // Nothing else is under /netboot/: other files, other releases, traversal, the cache's own names.
        for (const p of [
          '/netboot/r1/payload.bin',
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
        // A node's identity: by MAC (percent-encoded too); a stranger 404, a malformed escape 400.
        const id = await http(port, 'GET', `/netboot/node/${NODE.replaceAll(':', '%3A')}`);
        expect(id.status).toBe(200);
        expect(id.body.toString()).toMatch(/^node rack1-n01\nhostname rack1-n01\nmac 52:54:00:0c:00:01\n/);
        expect((await http(port, 'GET', '/netboot/node/52:54:00:0c:00:99')).status).toBe(404);
        expect((await http(port, 'GET', '/netboot/node/%E0%A4%A')).status).toBe(400);
        expect((await http(port, 'GET', '/netboot/node/not-a-mac')).status).toBe(400);
        const api = JSON.parse((await http(port, 'GET', '/api/netboot')).body.toString()) as NetbootView;
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
        if (engine === 'nginx') await checkPageInChromium(port);
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

/** A process in the background, its output in a file; kill() stops it (and waits). */
function background(argv: string[], log: string, cwd?: string) {
  const out = openSync(log, 'a');
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', out, out],
    cwd,
    env: { ...process.env, OSBAKE_LOG_DIR: TEST_LOG_DIR },
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

async function waitFor(what: string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// The site's DHCP and osbake's proxy DHCP, for real: in a network namespace, a bridge (the nodes'
// network, 10.77.0.0/24) with osbake serve and osbake's dnsmasq-config on it; the site's DHCP
// server (dnsmasq handing out addresses only) in a second namespace behind a veth; a node (QEMU,
// SeaBIOS, its NIC's iPXE ROM) on a tap. The node gets its address from the site, the boot file
// from the proxy, and asks osbake serve for its own script and kernel.
describe('osbake netboot dnsmasq-config with real dnsmasq', () => {
  it("a node gets its address from the site's DHCP, the boot script from the proxy, then its own script from osbake serve; under Secure Boot, from dnsmasq as the DHCP server, the signed chain by TFTP, and GRUB refuses an unsigned kernel", async () => {
    const ns = `osbnb${process.pid % 100000}`;
    const site = `${ns}s`;
    const tap = `osbtap${process.pid % 100000}`;
    const inNs = ['ip', 'netns', 'exec', ns];
    const sh = (cmd: string) =>
      execFileSync('sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const dir = await mkdtemp(join(work, 'dnsmasq-'));
    const port = await freePort();
    const procs: { kill(): Promise<void> }[] = [];
    await writeFile(join(dir, 'tap-up'), `#!/bin/sh\nip link set "$1" master br0\nip link set "$1" up\n`, {
      mode: 0o755,
    });
    sh(`ip netns add ${ns} && ip netns add ${site}`);
    try {
      sh(
        `ip netns exec ${ns} sh -c 'ip link set lo up && ip link add br0 type bridge && ip addr add 10.77.0.1/24 dev br0 && ip link set br0 up && ip link add vsite type veth peer name vsite-br && ip link set vsite-br master br0 && ip link set vsite-br up && ip link set vsite netns ${site}'`,
      );
      sh(
        `ip netns exec ${site} sh -c 'ip link set lo up && ip addr add 10.77.0.2/24 dev vsite && ip link set vsite up'`,
      );
      procs.push(
        background(
          [
            ...['ip', 'netns', 'exec', site],
            ...'dnsmasq --no-daemon --port=0 --log-dhcp --bind-interfaces --interface=vsite'.split(' '),
            '--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h',
            `--dhcp-leasefile=${join(dir, 'site.leases')}`,
          ],
          join(dir, 'site.log'),
        ),
      );
      const conf = await runCli(
        [
          'netboot',
          'dnsmasq-config',
          '--server',
          `http://10.77.0.1:${port}`,
          '--subnet',
          '10.77.0.0/24',
          '--interface',
          'br0',
        ],
        project.dir,
      );
      expect(conf.code, conf.stderr).toBe(0);
      await writeFile(join(dir, 'proxy.conf'), conf.stdout);
      procs.push(
        background(
          [...inNs, 'dnsmasq', '--no-daemon', `--conf-file=${join(dir, 'proxy.conf')}`],
          join(dir, 'proxy.log'),
        ),
      );
      procs.push(
        background(
          [
            ...inNs,
            process.execPath,
            CLI,
            ...`serve --netboot --host 10.77.0.1 --port ${port}`.split(' '),
            ...'--engine node --workers 1'.split(' '),
          ],
          join(dir, 'serve.log'),
          project.dir,
        ),
      );
      const serveLog = () =>
        existsSync(join(dir, 'serve.log')) ? readFileSync(join(dir, 'serve.log'), 'utf8') : '';
      await waitFor('osbake serve', () => serveLog().includes('netboot: nodes boot'), 60_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}\n${serveLog()}`);
        },
      );
      // A PXE ROM would load iPXE from the proxy's TFTP: the file is there, as Debian ships it.
      sh(`ip netns exec ${site} busybox tftp -g -r undionly.kpxe -l ${join(dir, 'undionly.kpxe')} 10.77.0.1`);
      expect(
        readFileSync(join(dir, 'undionly.kpxe')).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe')),
      ).toBe(true);
      procs.push(
        background(
          [
            ...inNs,
            ...'qemu-system-x86_64 -accel tcg -m 256 -display none -nodefaults'.split(' '),
            ...['-netdev', `tap,id=n0,ifname=${tap},script=${join(dir, 'tap-up')},downscript=no`],
            ...['-device', `e1000,netdev=n0,mac=${NODE},bootindex=0`],
          ],
          join(dir, 'qemu.log'),
        ),
      );
      const asked = `"GET /netboot/r1/vmlinuz"`;
      await waitFor('the node to ask for its kernel', () => serveLog().includes(asked), 240_000).catch(
        (err: Error) => {
          throw new Error(
            `${err.message}\nserve:\n${serveLog()}\nproxy:\n${readFileSync(join(dir, 'proxy.log'), 'utf8').slice(-3000)}`,
          );
        },
      );
      expect(serveLog()).toMatch(/10\.77\.0\.1\d\d "GET \/netboot\/boot\.ipxe" 200/);
      expect(serveLog()).toMatch(
        /10\.77\.0\.1\d\d "GET \/netboot\/boot\.ipxe\?mac=52(%3A|:)54(%3A|:)00(%3A|:)0c(%3A|:)00(%3A|:)01" 200/,
      );
      const proxyLog = readFileSync(join(dir, 'proxy.log'), 'utf8');
      expect(proxyLog).toContain(`PXE(br0) ${NODE} proxy`);
      expect(proxyLog).toContain(`bootfile name: http://10.77.0.1:${port}/netboot/boot.ipxe`);
      // The address came from the site's server, which knows nothing of booting.
      expect(readFileSync(join(dir, 'site.log'), 'utf8')).toMatch(
        new RegExp(`DHCPACK\\(vsite\\) 10\\.77\\.0\\.1\\d\\d ${NODE}`),
      );
      // The same node under OVMF with Secure Boot enforced and no iPXE ROM. GRUB does not follow a
      // proxy DHCP answer (it asks the site's server for grub.cfg), so this network is made a
      // provisioning network: dnsmasq-config --dhcp-range makes dnsmasq its DHCP server. It sends
      // UEFI the signed chain, its TFTP serves it from the directory osbake serve keeps (shim →
      // grubnetx64 → grub/grub.cfg → the node's branch → its kernel), and GRUB refuses this
      // stick's kernel, which is not signed (random bytes): Secure Boot holds.
      const qemuIpxe = procs.pop();
      await qemuIpxe?.kill();
      for (const p of procs.slice(0, 2)) await p.kill();
      const full = await runCli(
        [
          ...'netboot dnsmasq-config --subnet 10.77.0.0/24 --interface br0'.split(' '),
          ...['--server', `http://10.77.0.1:${port}`, '--dhcp-range', '10.77.0.160,10.77.0.170'],
        ],
        project.dir,
      );
      expect(full.code, full.stderr).toBe(0);
      await writeFile(join(dir, 'full.conf'), full.stdout);
      procs.push(
        background(
          [
            ...inNs,
            'dnsmasq',
            '--no-daemon',
            `--conf-file=${join(dir, 'full.conf')}`,
            `--dhcp-leasefile=${join(dir, 'full.leases')}`,
          ],
          join(dir, 'full.log'),
        ),
      );
      const vars = join(dir, 'vars.fd');
      await copyFile(OVMF.secureboot.vars, vars);
      const serial = join(dir, 'sb-serial.log');
      procs.push(
        background(
          [
            ...inNs,
            ...'qemu-system-x86_64 -accel tcg -m 512 -display none -nodefaults'.split(' '),
            ...firmwareArgs('secureboot', vars),
            ...['-netdev', `tap,id=n0,ifname=${tap}b,script=${join(dir, 'tap-up')},downscript=no`],
            ...['-device', `virtio-net-pci,netdev=n0,mac=${NODE},bootindex=0,romfile=`],
            ...['-serial', `file:${serial}`],
          ],
          join(dir, 'qemu-sb.log'),
        ),
      );
      const serialText = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '');
      await waitFor(
        'GRUB to refuse the unsigned kernel',
        () => /bad shim signature/.test(serialText()),
        240_000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}\nserial:\n${serialText().slice(-3000)}\ndnsmasq:\n${readFileSync(join(dir, 'full.log'), 'utf8').slice(-3000)}`,
        );
      });
      const tftpRoot = join(project.dir, '.osbake', 'netboot', 'tftp');
      const sent = readFileSync(join(dir, 'full.log'), 'utf8');
      expect(sent).toMatch(new RegExp(`DHCPACK\\(br0\\) 10\\.77\\.0\\.1[67]\\d ${NODE}`));
      for (const f of ['bootx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'r1/vmlinuz']) {
        expect(sent).toMatch(new RegExp(`sent ${tftpRoot}/${f} to 10\\.77\\.0\\.1[67]\\d`));
      }
      expect(serialText()).toContain(
        `osbake: installing r1 (debian12-base-r1-main-0123abcd) on rack1-n01 on /dev/sda`,
      );
    } finally {
      for (const p of procs.reverse()) await p.kill();
      sh(`ip netns del ${ns} 2>/dev/null; ip netns del ${site} 2>/dev/null; true`);
    }
  }, 300_000);
});
