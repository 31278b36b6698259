/** Packer adapter: version, template staging, the (pure) build argv, and a run that reports progress. */
import { existsSync, readdirSync } from 'node:fs';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { capture, run } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';
import {
  interpretPackerLine,
  type PackerEvent,
  packerLineText,
  parseHumanPackerLine,
  parsePackerLine,
} from './machine-readable.js';
import type { PackerBuilderType as BuilderType, PackerVarValue } from './vars.js';

export type { PackerVarValue };

export interface PackerVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export function parsePackerVersion(out: string): PackerVersion | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(out);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: m[0] };
}

/** Packer 1.7 and later load builders and provisioners as plugins that must be declared. */
export function needsRequiredPlugins(v: PackerVersion): boolean {
  return v.major > 1 || (v.major === 1 && v.minor >= 7);
}

const QEMU_PLUGIN = `    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
`;
const ANSIBLE_PLUGIN = `    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.1.0"
    }
`;
/** packer-plugin-libvirt (the users' plugin; its artifact is a volume on the hypervisor). */
export const LIBVIRT_PLUGIN_SOURCE = 'github.com/thomasklein94/libvirt';
const LIBVIRT_PLUGIN = `    libvirt = {
      source  = "${LIBVIRT_PLUGIN_SOURCE}"
      version = ">= 0.5.0"
    }
`;

/** The `packer { required_plugins }` block for Packer >= 1.7 (1.6.6 rejects it, so it is added only there). */
export function requiredPluginsHcl(builder: BuilderType = 'qemu'): string {
  const plugins = builder === 'libvirt' ? LIBVIRT_PLUGIN + ANSIBLE_PLUGIN : QEMU_PLUGIN + ANSIBLE_PLUGIN;
  return `packer {\n  required_plugins {\n${plugins}  }\n}\n`;
}

export const REQUIRED_PLUGINS_HCL = requiredPluginsHcl('qemu');

export async function findPacker(log: Logger): Promise<PackerVersion> {
  const out = await capture(['packer', 'version'], { log, tag: 'packer' });
  const v = parsePackerVersion(out);
  if (!v) throw new Error(`cannot read the Packer version from "${out}"`);
  return v;
}

/** Sources and builds per builder live in builders/<type>.pkr.hcl (staged only for that builder). */
export const BUILDERS_DIR = 'builders';

/** Refuse early a builder the image's template has no variant for (stageTemplate checks it too). */
export function checkTemplateSupports(src: string, builder: BuilderType): void {
  const perBuilder = join(src, BUILDERS_DIR);
  if (existsSync(perBuilder) ? existsSync(join(perBuilder, `${builder}.pkr.hcl`)) : builder === 'qemu')
    return;
  throw new UserError(
    'E_BUILDER_UNSUPPORTED',
    `${src} has no ${builder} variant (${join(BUILDERS_DIR, `${builder}.pkr.hcl`)})`,
    builder === 'libvirt'
      ? 'build it with --builder qemu, or add builders/libvirt.pkr.hcl (see images/rocky8-base)'
      : 'build it with --builder libvirt',
  );
}

export interface StageOptions {
  builder?: BuilderType;
  /** Copied to http/osbake_authorized_keys when the template serves an http/ directory (kickstart). */
  publicKeyFile?: string;
}

/**
 * Copy the image's template directory into the build's work dir: the shared top-level files, the
 * chosen builder's builders/<type>.pkr.hcl when the template has a builders/ directory, and a
 * required_plugins block for Packer >= 1.7.
 */
export async function stageTemplate(
  src: string,
  dest: string,
  version: PackerVersion,
  o: StageOptions = {},
): Promise<void> {
  const builder = o.builder ?? 'qemu';
  const perBuilder = join(src, BUILDERS_DIR);
  const builderFile = join(perBuilder, `${builder}.pkr.hcl`);
  checkTemplateSupports(src, builder);
  await cp(src, dest, {
    recursive: true,
    filter: (p) => p !== perBuilder && !/(^|\/)(manifest\.json|output-[^/]*|packer_cache)$/.test(p),
  });
  if (existsSync(perBuilder)) await cp(builderFile, join(dest, `osbake-builder-${builder}.pkr.hcl`));
  if (o.publicKeyFile && existsSync(join(dest, 'http')))
    await cp(o.publicKeyFile, join(dest, 'http', 'osbake_authorized_keys'));
  if (needsRequiredPlugins(version))
    await writeFile(join(dest, 'osbake-plugins.pkr.hcl'), requiredPluginsHcl(builder));
}

/** The command that enters the build VM, from Packer's "Found port for communicator ...: N." step. */
export function sshCommandFromStep(text: string, keyFile: string): string | undefined {
  const port = /port for communicator.*?(\d+)\.?$/i.exec(text);
  if (!port) return undefined;
  return `ssh -i ${keyFile} -p ${port[1]} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1`;
}

export interface PackerBuildOptions {
  templateDir: string;
  vars: Record<string, PackerVarValue>;
  /** -var-file files, given before the -var options (which win over them, as in Packer). */
  varFiles?: readonly string[];
  /** packer -debug: pause at every step. */
  debug?: boolean;
  /** -on-error=ask|abort|cleanup (default cleanup). */
  onError?: 'cleanup' | 'abort' | 'ask';
}

/** The `packer build` argv (pure). */
export function buildPackerArgs(o: PackerBuildOptions): string[] {
  // -debug pauses through Packer's interactive UI, which the machine-readable UI does not have.
  const argv = [
    'packer',
    'build',
    ...(o.debug ? ['-debug'] : ['-machine-readable']),
    '-color=false',
    '-force',
  ];
  argv.push(`-on-error=${o.onError ?? 'cleanup'}`);
  for (const f of o.varFiles ?? []) argv.push(`-var-file=${f}`);
  for (const [k, v] of Object.entries(o.vars).sort(([a], [b]) => a.localeCompare(b))) {
    argv.push('-var', `${k}=${String(v)}`);
  }
  argv.push(o.templateDir);
  return argv;
}

export interface PackerRunOptions {
  argv: string[];
  cwd: string;
  log: Logger;
  signal: AbortSignal;
  interactive: boolean;
  echo: boolean;
  timeoutMs?: number;
  onEvent: (e: PackerEvent) => void;
}

export interface PackerRunResult {
  artifacts: Map<string, string[]>;
  errors: string[];
  /** Last human-readable lines, for error messages. */
  tail: string[];
}

/** Run packer build, turning machine-readable output into events; throws ProcessError on failure. */
export async function runPackerBuild(o: PackerRunOptions): Promise<PackerRunResult> {
  const artifacts = new Map<string, string[]>();
  const errors: string[] = [];
  const tail: string[] = [];
  const onLine = (line: string) => {
    const p = parsePackerLine(line) ?? parseHumanPackerLine(line);
    if (!p) return;
    const text = packerLineText(p);
    if (text.trim()) {
      tail.push(...text.split('\n'));
      while (tail.length > 40) tail.shift();
    }
    const e = interpretPackerLine(p);
    if (e.kind === 'artifact' && e.key === 'file') {
      const files = artifacts.get(e.build) ?? [];
      if (e.values[1]) files.push(e.values[1]);
      artifacts.set(e.build, files);
    }
    if (e.kind === 'error') errors.push(e.text);
    o.onEvent(e);
  };
  await run(o.argv, {
    log: o.log,
    tag: 'packer',
    cwd: o.cwd,
    env: { CHECKPOINT_DISABLE: '1', PACKER_CACHE_DIR: join(o.cwd, 'packer_cache'), PACKER_NO_COLOR: '1' },
    // If osbake is killed outright, Packer still stops its VM (SIGTERM is its own cleanup signal).
    dieWithParent: !o.interactive,
    onLine,
    signal: o.signal,
    // Packer cleans up (stops QEMU, deletes the output directory) on SIGINT; give it time.
    cancelSignal: 'SIGINT',
    cancelGraceMs: 60_000,
    timeoutMs: o.timeoutMs,
    interactive: o.interactive,
    // With -debug the user must see Packer's prompts as they come (they end without a newline).
    passthrough: o.interactive ? process.stderr : undefined,
    echo: o.echo,
    tailLines: 40,
  });
  return { artifacts, errors, tail };
}

/**
 * `packer validate -syntax-only` output → "file:line: summary: detail" lines (pure). Paths inside
 * the staged copy are mapped back to the image's own files.
 */
export function parsePackerSyntaxErrors(out: string, staged: string, original: string): string[] {
  const errors: string[] = [];
  const re = /Error: ([^\n]+)\n\s*\n\s*on (.+?) line (\d+)[^\n]*\n(?:[^\n]*\n)*?\s*\n([^\n]+)/g;
  for (const m of out.matchAll(re)) {
    const file = (m[2] ?? '').replace(staged, original);
    errors.push(`${file}:${m[3]}: ${m[1]}: ${(m[4] ?? '').trim()}`);
  }
  if (errors.length === 0) {
    const first = out.split('\n').find((l) => l.trim().startsWith('Error:'));
    if (first) errors.push(first.trim().replace(staged, original));
  }
  return errors;
}

/** Syntax of the image's template, checked before any slow work (Packer parses, no plugins run). */
export async function checkTemplateSyntax(o: {
  templateDir: string;
  workDir: string;
  version: PackerVersion;
  builder: BuilderType;
  log: Logger;
}): Promise<void> {
  const staged = join(o.workDir, 'template-check');
  await stageTemplate(o.templateDir, staged, o.version, { builder: o.builder });
  const r = await run(['packer', 'validate', '-syntax-only', staged], {
    log: o.log,
    tag: 'packer',
    cwd: o.workDir,
    env: { CHECKPOINT_DISABLE: '1', PACKER_NO_COLOR: '1' },
    okCodes: [1],
    tailLines: 60,
  });
  if (r.exitCode === 0) return;
  const errors = parsePackerSyntaxErrors(r.tail.join('\n'), staged, o.templateDir);
  throw new UserError(
    'E_TEMPLATE',
    errors.length > 0 ? errors.join('\n') : `packer validate -syntax-only failed on ${o.templateDir}`,
    'fix the template (packer validate -syntax-only shows the same); nothing was built',
  );
}

/** Packer variants of an image: builders/<type>.pkr.hcl, or the qemu template at its top. */
export function packerVariants(templateDir: string): BuilderType[] {
  const dir = join(templateDir, BUILDERS_DIR);
  if (!existsSync(dir)) return ['qemu'];
  return readdirSync(dir)
    .filter((f) => /^(qemu|libvirt)\.pkr\.hcl$/.test(f))
    .map((f) => f.replace('.pkr.hcl', '') as BuilderType);
}
