/**
 * The project's bad-input corpus (issue 21): generated cases, each run through the real CLI with a
 * PATH that holds no build tool. Every case must end within seconds with a non-zero exit that is
 * not an internal error, one line carrying its E_ code plus a hint, nothing quoted from a file it
 * should not have read, and the project tree exactly as it was.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { ImageConfigSchema } from '../../src/config/image.js';
import { ProjectConfigSchema } from '../../src/config/project.js';
import { CLI, REPO } from '../integration/helpers.js';
import { aliasBomb, schemaLeaves } from './corpus.js';

const SECRET = existsSync('/etc/shadow') ? '/etc/shadow' : '/etc/passwd';
const SECRET_TEXT = 'root:';

const BASE_OSBAKE = [
  'store: store',
  'workDir: .osbake',
  'outDir: out',
  'hypervisors:',
  '  - name: kvm1',
  '    uri: qemu+ssh://root@kvm1.example.org/system',
  '    sshKey: ~/.ssh/osbake',
  '    vanillaVolume: v.qcow2',
  'netboot:',
  '  nodes:',
  '    "52:54:00:12:34:56": { hostname: node01 }',
  '',
].join('\n');

const MANIFEST_YAML = [
  'releases:',
  '  r1:',
  '    date: "2026-12-01"',
  `    git_commit: ${'a'.repeat(40)}`,
  '    artifacts:',
  '      - name: debian12-base',
  '        kind: image',
  '        path: builds/debian12-base-r1-main-aaaaaaaa.qcow2',
  `        sha256: ${'b'.repeat(64)}`,
  '        size: 5',
  '        build: debian12-base-r1-main-aaaaaaaa',
  '',
].join('\n');

const root = mkdtempSync(join(tmpdir(), 'osbake-corpus-'));
const template = join(root, 'template');

function makeTemplate(): void {
  mkdirSync(template, { recursive: true });
  cpSync(join(REPO, 'images/debian12-base'), join(template, 'images/debian12-base'), {
    recursive: true,
    filter: (p) => !p.endsWith('manifest.json'),
  });
  writeFileSync(join(template, 'osbake.yaml'), BASE_OSBAKE);
  writeFileSync(join(template, 'manifest.yaml'), MANIFEST_YAML);
  mkdirSync(join(template, 'store/builds'), { recursive: true });
  writeFileSync(join(template, 'store/builds/debian12-base-r1-main-aaaaaaaa.qcow2'), 'image');
  mkdirSync(join(template, 'store/releases'), { recursive: true });
  mkdirSync(join(template, 'keys'), { recursive: true });
  mkdirSync(join(template, '.osbake/netboot/nodes'), { recursive: true });
}
makeTemplate();

/** path → kind, size, mtime of everything in the project (what a case must leave alone). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      out.set(relative(dir, p), `${st.mode}:${st.isDirectory() ? 0 : st.size}:${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

interface Case {
  name: string;
  /** Change the fresh project copy. */
  plant: (dir: string) => void;
  args: string[];
  /** Text the output must contain (the key path, the file name). */
  names?: string;
}

let n = 0;
function run(c: Case): Promise<{
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  dir: string;
  before: Map<string, string>;
}> {
  const dir = join(root, `case-${++n}`);
  cpSync(template, dir, { recursive: true });
  c.plant(dir);
  const before = snapshot(dir);
  const t0 = Date.now();
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...c.args], {
      cwd: dir,
      env: { ...process.env, CI: 'true', OSBAKE_LOG_DIR: join(root, 'logs'), GNUPGHOME: join(root, 'gnupg') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, ms: Date.now() - t0, dir, before });
    });
  });
}

const yamlSet = (file: string, path: (string | number)[], value: unknown) => (dir: string) => {
  const doc = parseDocument(readFileSync(join(dir, file), 'utf8'));
  doc.setIn(path, value);
  writeFileSync(join(dir, file), doc.toString());
};

const cases: Case[] = [];

// 1. Every key of osbake.yaml and image.yaml: a wrong type, and out of bounds where it has bounds.
const unwalkable: string[] = [];
for (const [file, schema, args] of [
  ['osbake.yaml', ProjectConfigSchema, ['validate']],
  ['images/debian12-base/image.yaml', ImageConfigSchema, ['validate', 'debian12-base']],
] as const) {
  for (const leaf of schemaLeaves(schema)) {
    if (leaf.bad.length === 0) unwalkable.push(`${file}: ${leaf.path.join('.')}`);
    for (const bad of leaf.bad) {
      cases.push({
        name: `${file} ${leaf.path.join('.')} = ${JSON.stringify(bad)}`,
        plant: yamlSet(file, leaf.path, bad),
        args: [...args],
        names: leaf.path.join('.'),
      });
    }
  }
}

// 2. Every file the CLI reads, in its hostile variants.
const FILES: { file: string; args: string[]; yaml?: boolean }[] = [
  { file: 'osbake.yaml', args: ['validate'], yaml: true },
  { file: 'images/debian12-base/image.yaml', args: ['validate'], yaml: true },
  { file: 'manifest.yaml', args: ['validate'], yaml: true },
  { file: 'images/debian12-base/manifest.json', args: ['validate'] },
  { file: 'store/releases/r1.json', args: ['verify', 'r1'] },
  { file: 'keys/ABCDEF.asc', args: ['keys', 'list'] },
  { file: '.osbake/netboot/nodes/52-54-00-12-34-56.json', args: ['netboot', 'nodes'] },
];
for (const f of FILES) {
  const at = (dir: string) => join(dir, f.file);
  /** Plant `make` at the file's place, after removing what the template has there. */
  const fresh =
    (make: (path: string) => void) =>
    (dir: string): void => {
      rmSync(at(dir), { recursive: true, force: true });
      make(at(dir));
    };
  const variants: [string, (dir: string) => void][] = [
    ['a FIFO', fresh((p) => execFileSync('mkfifo', [p]))],
    ['a directory', fresh((p) => mkdirSync(p))],
    [`a symlink to ${SECRET}`, fresh((p) => symlinkSync(SECRET, p))],
    ['/dev/zero', fresh((p) => symlinkSync('/dev/zero', p))],
    [
      'oversized (70 MiB)',
      fresh((p) => {
        writeFileSync(p, '');
        truncateSync(p, 70 * 2 ** 20);
      }),
    ],
    ['binary', fresh((p) => writeFileSync(p, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0, 0xff])))],
  ];
  if (f.yaml) variants.push(['a YAML alias bomb', fresh((p) => writeFileSync(p, aliasBomb()))]);
  for (const [what, plant] of variants)
    cases.push({ name: `${f.file} is ${what}`, plant, args: f.args, names: f.file.split('/').at(-1) });
}

// 3. A file where a directory belongs.
for (const [dir, args] of [
  ['keys', ['keys', 'list']],
  ['store/releases', ['verify', 'r1']],
  ['.osbake/netboot/nodes', ['netboot', 'nodes']],
  ['store', ['verify', 'r1']],
] as const) {
  cases.push({
    name: `${dir} is a file`,
    plant: (d) => {
      rmSync(join(d, dir), { recursive: true, force: true });
      writeFileSync(join(d, dir), 'x');
    },
    args: [...args],
    names: dir,
  });
}

// 4. Hostile command lines.
const ARGS: [string, string[]][] = [
  ['--var without =', ['build', 'debian12-base', '--release', 'r', '--skip-commit', '--var', 'noequals']],
  [
    'a managed --var',
    ['build', 'debian12-base', '--release', 'r', '--skip-commit', '--var', 'output_directory=/'],
  ],
  ['an unknown image', ['build', 'no-such-image', '--release', 'r']],
  ['a release name with a slash', ['build', 'debian12-base', '--release', '../x']],
  ['--builder nonsense', ['build', 'debian12-base', '--release', 'r', '--builder', 'docker']],
  ['--firmware nonsense', ['build', 'debian12-base', '--release', 'r', '--firmware', 'coreboot']],
  ['--accelerator nonsense', ['build', 'debian12-base', '--release', 'r', '--accelerator', 'hvf']],
  ['a missing --var-file', ['build', 'debian12-base', '--release', 'r', '--var-file', 'nope.pkrvars.hcl']],
  ['an unknown release to verify', ['verify', 'r9']],
  ['--mirror not a URL', ['verify', 'r1', '--mirror', 'ftp://x']],
  ['serve --port 99999', ['serve', '--port', '99999']],
  ['serve --port http', ['serve', '--port', 'http']],
  ['serve --workers 0', ['serve', '--workers', '0']],
  [
    'dnsmasq-config --server port 99999',
    ['netboot', 'dnsmasq-config', '--server', 'http://10.0.0.5:99999', '--subnet', '10.0.0.0/24'],
  ],
  [
    'dnsmasq-config --server 0.0.0.0',
    ['netboot', 'dnsmasq-config', '--server', 'http://0.0.0.0:8080', '--subnet', '10.0.0.0/24'],
  ],
  [
    'dnsmasq-config --server port 0',
    ['netboot', 'dnsmasq-config', '--server', 'http://10.0.0.5:0', '--subnet', '10.0.0.0/24'],
  ],
  ['reinstall a broadcast MAC', ['netboot', 'reinstall', 'ff:ff:ff:ff:ff:ff']],
  ['reinstall nonsense', ['netboot', 'reinstall', 'nonsense']],
  ['keys init --expire 99999y', ['keys', 'init', '--expire', '99999y']],
  ['keys init --expire 0', ['keys', 'init', '--expire', '0']],
  ['keys init --uid with a newline', ['keys', 'init', '--uid', 'a\nb']],
  ['release --patches x --no-patches', ['release', 'r2', '--patches', 'x', '--no-patches']],
  ['clean --cache-older-than soon', ['clean', '--cache-older-than', 'soon']],
  [
    'burn to a bare drive name',
    ['burn', 'store/builds/debian12-base-r1-main-aaaaaaaa.qcow2', 'vda', '--yes'],
  ],
  ['burn a missing image', ['burn', 'nope.raw', 'out.raw', '--yes']],
  ['test a path out of the store', ['test', '../../etc/shadow']],
  ['test an unknown build', ['test', 'debian12-base-r9-main-00000000']],
  ['packages of an unknown build', ['packages', 'nope']],
  ['diff of unknown builds', ['diff', 'a', 'b']],
  ['manifest prune of an unknown image', ['manifest', 'prune', 'nope']],
  ['publish without target', ['publish']],
  ['an unknown verb', ['frobnicate']],
];
for (const [what, args] of ARGS) cases.push({ name: `command line: ${what}`, plant: () => undefined, args });

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the bad-input corpus (generated; real CLI, no build tools on PATH)', () => {
  it('has a bad-value case for every config key, and at least 150 cases', () => {
    expect(unwalkable).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it('refuses every case: exit 1 or 2, one line with E_ code and a hint, no content quoted, no hang, the tree unchanged', async () => {
    const failures: string[] = [];
    const queue = [...cases];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const r = await run(c);
        const why: string[] = [];
        const first = r.stderr.split('\n')[0] ?? '';
        if (r.code === null) why.push(`hung (killed after ${r.ms} ms)`);
        else if (r.code === 0) why.push('accepted (exit 0)');
        else if (r.code === 70) why.push('internal error (exit 70)');
        else if (r.code !== 1 && r.code !== 2) why.push(`exit ${r.code}`);
        const coded = /\[E_[A-Z0-9_]+\]/.test(first) || /^\s*error: /.test(first) || /FAIL/.test(r.stdout);
        if (!coded) why.push(`no E_ code on the first line: ${first.slice(0, 160)}`);
        if (/\[E_[A-Z0-9_]+\]/.test(first) && !/\nhint: /.test(r.stderr)) why.push('no hint');
        if (c.names && !`${r.stdout}${r.stderr}`.includes(c.names)) why.push(`does not name ${c.names}`);
        if (`${r.stdout}${r.stderr}`.includes(SECRET_TEXT)) why.push(`quotes ${SECRET}`);
        const after = snapshot(r.dir);
        const changed = [...new Set([...r.before.keys(), ...after.keys()])].filter(
          (k) => r.before.get(k) !== after.get(k),
        );
        if (changed.length > 0) why.push(`changed the project: ${changed.slice(0, 5).join(', ')}`);
        if (why.length > 0)
          failures.push(
            `${c.name} [osbake ${c.args.join(' ')}]: ${why.join('; ')}\n    ${r.stderr.trim().split('\n').slice(0, 3).join('\n    ')}`,
          );
        rmSync(r.dir, { recursive: true, force: true });
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    console.log(`corpus: ${cases.length} cases, ${failures.length} failed`);
    expect(failures).toEqual([]);
  }, 600_000);
});
