/**
 * `osbake validate [IMAGE...]` (as `packer validate` and `mkosi summary`): every check that needs
 * no build, in seconds — osbake.yaml, image.yaml with the distro's own rules, the Packer template
 * of each builder variant (`packer validate -syntax-only`), the playbook (`ansible-playbook
 * --syntax-check`), kickstart files, manifest.json and manifest.yaml. Every problem is listed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLAYBOOK } from '../builders/artifact.js';
import { choiceUsesHypervisors } from '../builders/choice.js';
import { checkLibvirtHost } from '../builders/libvirt/preflight.js';
import {
  checkTemplateSyntax,
  findPacker,
  type PackerVersion,
  packerVariants,
} from '../builders/packer/packer.js';
import { readBuildsManifest } from '../config/builds.js';
import { type ImageDefinition, listImageNames, loadImage } from '../config/image.js';
import { projectNodes } from '../config/nodes.js';
import { loadProject, type Project } from '../config/project.js';
import { loadReleases, releasesFile } from '../config/releases.js';
import { distroOf } from '../distros/index.js';
import { checkKickstart, kickstartFirmware } from '../distros/kickstart.js';
import { ConfigError, ProcessError, UserError } from '../errors.js';
import { run } from '../exec/run.js';
import { identityBlock } from '../installer/node-identity.js';
import { createNullLogger, type Logger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { trustRootFiles } from '../signing/gpg.js';
import { keysDir, signingKeyOf } from '../signing/project-keys.js';
import { planSchedule, type ScheduleImage } from './schedule.js';

export interface ValidateResult {
  target: string;
  check: string;
  ok: boolean;
  problems: string[];
  /** Not wrong, but worth knowing (e.g. a disk that boots under one firmware only). */
  notes?: string[];
}

function problemsOf(err: unknown): string[] {
  if (err instanceof ConfigError)
    return err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  if (err instanceof UserError) return [err.message];
  if (err instanceof ProcessError) return [err.message, ...err.outputTail.slice(-8)];
  return [err instanceof Error ? err.message : String(err)];
}

async function check(
  results: ValidateResult[],
  target: string,
  name: string,
  fn: () => Promise<string[] | undefined | unknown>,
) {
  try {
    const notes = await fn();
    const n = Array.isArray(notes) ? notes.map(String) : [];
    results.push({ target, check: name, ok: true, problems: [], ...(n.length ? { notes: n } : {}) });
  } catch (err) {
    results.push({ target, check: name, ok: false, problems: problemsOf(err) });
  }
}

/** The project's own files: osbake.yaml, manifest.yaml, the keys, the nodes, the hypervisors. */
async function projectChecks(project: Project, results: ValidateResult[], log: Logger): Promise<void> {
  results.push({ target: 'osbake.yaml', check: 'schema', ok: true, problems: [] });
  await check(results, 'manifest.yaml', 'schema', () => loadReleases(releasesFile(project)));
  // The signing key and the trust root, as release, verify and burn check them.
  await check(results, 'keys/', 'trust root', async () => {
    signingKeyOf(project);
    if (existsSync(keysDir(project)) || project.config.signing.key)
      await trustRootFiles(keysDir(project), log);
  });
  // Each node's identity as serve --netboot and a stick build render it (its files' sources read).
  for (const node of projectNodes(project.config)) {
    await check(results, `node ${node.name}`, 'identity', () => identityBlock(node, project.root));
  }
  // With the libvirt builder, each hypervisor as a build checks it: SSH (host key pinned), libvirt, pool.
  if (choiceUsesHypervisors({ builder: project.config.builder.type })) {
    for (const h of project.config.hypervisors) {
      await check(results, `hypervisor ${h.name}`, 'ssh, libvirt, pool', () => checkLibvirtHost(h, { log }));
    }
  }
}

/** A disk image's provisioning: its Packer templates, its playbook, its kickstarts. */
async function provisioningChecks(
  img: ImageDefinition,
  results: ValidateResult[],
  t: { packer: PackerVersion | undefined; work: string; log: Logger },
): Promise<void> {
  const name = img.name;
  for (const variant of packerVariants(img.templateDir)) {
    await check(results, name, `packer (${variant})`, async () => {
      if (!t.packer) throw new UserError('E_TOOL_MISSING', 'packer not found', 'apt-get install packer');
      await checkTemplateSyntax({
        templateDir: img.templateDir,
        workDir: join(t.work, `${name}-${variant}`),
        version: t.packer,
        builder: variant,
        log: t.log,
      });
    });
  }
  const playbook = join(img.dir, PLAYBOOK);
  if (!existsSync(playbook)) {
    await check(results, name, 'ansible playbook', async () => {
      throw new UserError(
        'E_NO_PLAYBOOK',
        `${playbook} does not exist`,
        `every builder runs the image's ${PLAYBOOK}`,
      );
    });
  } else {
    await check(results, name, 'ansible --syntax-check', () =>
      run(['ansible-playbook', '--syntax-check', '-i', 'localhost,', PLAYBOOK], {
        log: t.log,
        cwd: img.dir,
        env: { ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCAL_TEMP: join(t.work, 'ansible-tmp') },
        tailLines: 10,
      }),
    );
  }
  const http = join(img.templateDir, 'http');
  for (const ks of existsSync(http) ? readdirSync(http).filter((f) => f.endsWith('.cfg')) : []) {
    await check(results, name, `kickstart ${ks}`, () => kickstartNotes(join(http, ks)));
  }
}

/** A kickstart's problems (an error) and what it lacks to boot under each firmware (notes). */
async function kickstartNotes(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const r = checkKickstart(text);
  if (r.problems.length > 0) {
    throw new UserError('E_KICKSTART', r.problems.map((p) => `${file}: ${p}`).join('\n'), '');
  }
  const fw = kickstartFirmware(text);
  return [
    ...(fw.bios.length ? [`the disk will not boot under BIOS: it lacks ${fw.bios.join(', ')}`] : []),
    ...(fw.uefi.length
      ? [`the disk will not boot under UEFI (UEFI-only nodes): it lacks ${fw.uefi.join(', ')}`]
      : []),
  ];
}

/**
 * needs: known and acyclic, by the function build --all orders images with. With image names
 * given, the others are loaded too (a need may be among them).
 */
async function needsCheck(
  project: Project,
  loaded: ScheduleImage[],
  results: ValidateResult[],
): Promise<void> {
  await check(results, 'images', 'needs', async () => {
    const all = new Map(loaded.map((i) => [i.name, i]));
    for (const n of await listImageNames(project)) {
      if (all.has(n)) continue;
      const i = await loadImage(project, n).catch(() => undefined);
      if (i) all.set(n, { name: n, needs: i.config.needs, file: i.file });
    }
    planSchedule([...all.values()]);
  });
}

function printResults(out: TextOut, results: ValidateResult[]): void {
  for (const r of results) {
    out.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.target}: ${r.check}\n`);
    for (const p of r.problems) out.write(`       ${p}\n`);
    for (const n of r.notes ?? []) out.write(`       note: ${n}\n`);
  }
}

export async function runValidate(o: {
  projectDir: string;
  images: string[];
  json?: boolean;
  out?: TextOut;
}): Promise<ValidateResult[]> {
  const out = o.out ?? process.stdout;
  const log = createNullLogger();
  const results: ValidateResult[] = [];
  const project = await loadProject(o.projectDir);
  await projectChecks(project, results, log);
  const names = o.images.length > 0 ? o.images : await listImageNames(project);
  const loaded: ScheduleImage[] = [];
  const work = await mkdtemp(join(tmpdir(), 'osbake-validate-'));
  try {
    const packer = await findPacker(log).catch(() => undefined);
    for (const name of names) {
      let image: ImageDefinition | undefined;
      await check(results, name, 'image.yaml', async () => {
        image = await loadImage(project, name);
        distroOf(image);
      });
      if (!image) continue;
      const img = image;
      loaded.push({ name: img.name, needs: img.config.needs, file: img.file });
      if (existsSync(img.manifestFile))
        await check(results, name, 'manifest.json', () => readBuildsManifest(img.manifestFile));
      // An installer is assembled from files: no template, playbook or kickstart to check.
      if (img.config.kind === 'image') await provisioningChecks(img, results, { packer, work, log });
    }
    await needsCheck(project, loaded, results);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (o.json) out.write(`${JSON.stringify(results, null, 2)}\n`);
  else printResults(out, results);
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new UserError(
      'E_INVALID',
      `${failed.length} of ${results.length} check(s) failed`,
      'fix what is listed above; osbake validate runs no build',
    );
  }
  return results;
}
