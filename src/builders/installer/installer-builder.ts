/**
 * The installer builder (image.yaml kind: installer, e.g. usb-installer): no VM and no vanilla
 * disk; the stick is assembled on the host from release R's image. Its steps:
 *   payload-image → installer-os → payload → stick → stick-map
 * then the pipeline's own post-process, publish, record and commit, as for every builder. Its
 * state is one typed record per build (InstallerBuild), filled step by step.
 */

import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileSize, sha256File, sha256Line } from '../../artifacts/checksum.js';
import { projectNodes } from '../../config/nodes.js';
import type { ReleaseArtifact } from '../../config/releases.js';
import { UserError } from '../../errors.js';
import { initrdWithInit, installerLibs } from '../../installer/initramfs.js';
import { ensureInstallerOs, type InstallerOs } from '../../installer/installer-os.js';
import { identitiesText } from '../../installer/node-identity.js';
import { type CachedPayload, cachedPayload } from '../../installer/payload-cache.js';
import { assembleStick } from '../../installer/stick.js';
import {
  imageTxt,
  installerConfExample,
  installerKernelArgs,
  readmeTxt,
  type StickFacts,
} from '../../installer/stick-layout.js';
import { ByteProgress } from '../../log/progress.js';
import { writeBmapFor } from '../../media/bmap.js';
import { checkStoreArtifact } from '../../release/verify-artifact.js';
import { detachSign, keyringFromDir, requireSecretKey } from '../../signing/gpg.js';
import { keysDir, signingKeyOf } from '../../signing/project-keys.js';
import type { Builder, BuilderOutput, BuilderStep, BuildJob } from '../builder.js';
import { payloadOfRelease } from './release-payload.js';

/** Tools the installer builder runs (no Packer, no VM). */
export const INSTALLER_BUILDER_TOOLS = [
  'git',
  'mmdebstrap',
  'qemu-img',
  'filefrag',
  'zstd',
  'cpio',
  'extlinux',
  'mkfs.vfat',
  'mlabel',
  'mcopy',
  'mmd',
  'sfdisk',
  'losetup',
  'partx',
  'mknod',
  'mkfs.ext4',
  'mount',
];

/** One installer build's state, filled by its steps in order. */
interface InstallerBuild {
  /** --package FILE: an extra file put on the stick with its .sha256. */
  packageFile?: string;
  payloadArtifact?: ReleaseArtifact;
  pkg?: { name: string; sha256: string; size: number };
  os?: InstallerOs;
  payload?: CachedPayload;
  /** The assembled stick image and its manifest.json facts. */
  stick?: { file: string; extra: Record<string, unknown> };
  out?: BuilderOutput;
}

/** A value an earlier step set (steps run in order: its absence is osbake's bug, not the user's). */
function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`installer builder: no ${what} (an earlier step did not run)`);
  return value;
}

/** Before the tools and the work dir: release R and its payload image exist, inputs readable. */
async function checkInputs(job: BuildJob): Promise<void> {
  await payloadOfRelease(job.project, job.image, job.release);
  // The stick's SHA256SUMS is signed at the end: a missing secret key is said now.
  const key = signingKeyOf(job.project);
  if (key) await requireSecretKey(key.home, key.fingerprint, job.log);
  // The nodes' identities go onto the stick: their files' sources are read now, and the
  // installer's libraries must be there.
  await identitiesText(projectNodes(job.project.config), job.project.root);
  await installerLibs(job.image.dir, await readFile(join(job.image.dir, 'installer', 'init'), 'utf8'));
}

function payloadImageStep(b: InstallerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'payload-image',
    title: "checking release R's image in the store",
    async run() {
      const a = await payloadOfRelease(job.project, job.image, job.release, (l) => job.progress.say(l));
      if (!a.path.endsWith('.qcow2')) {
        throw new UserError(
          'E_NO_PAYLOAD',
          `${a.path} is not a qcow2 image`,
          'the payload must be a Packer image',
        );
      }
      const check = await checkStoreArtifact(job.project.storeDir, a, new ByteProgress());
      if (check.status !== 'OK') {
        throw new UserError(
          'E_STORE',
          `${check.location}: ${check.status} (manifest.yaml records sha256 ${a.sha256}, size ${a.size})`,
          'restore the image in the store (osbake verify R shows what is wrong)',
        );
      }
      b.payloadArtifact = a;
      job.progress.say(`payload: ${a.build ?? a.path} (${a.sha256.slice(0, 12)}…)`);
      if (b.packageFile) {
        const file = b.packageFile;
        const size = await fileSize(file).catch(() => {
          throw new UserError('E_USAGE', `--package ${file}: no such file`, 'give an existing file');
        });
        b.pkg = { name: basename(file), sha256: await sha256File(file), size };
      }
    },
  };
}

function installerOsStep(b: InstallerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'installer-os',
    title: 'preparing the installer OS (kernel + busybox initramfs)',
    async run() {
      const os = await ensureInstallerOs({
        project: job.project,
        image: job.image,
        scratchDir: job.workDir,
        log: job.log,
        signal: job.signal,
        progress: (t) => job.progress.detail(t),
      });
      b.os = os;
      job.progress.say(
        `installer OS: ${os.cached ? 'reused' : 'built'} ${os.dir} (kernel ${os.kernelVersion})`,
      );
    },
  };
}

function payloadStep(b: InstallerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'payload',
    title: 'preparing the payload (raw, block map, data ranges, zstd)',
    async run() {
      const a = need(b.payloadArtifact, 'payload image');
      b.payload = await cachedPayload({
        project: job.project,
        image: join(job.project.storeDir, a.path),
        sha256: a.sha256,
        name: a.build ?? a.name,
        level: job.image.config.installer.compressionLevel,
        scratchDir: job.workDir,
        log: job.log,
        signal: job.signal,
        progress: (t) => job.progress.detail(t),
        bytes: new ByteProgress(),
      });
      job.progress.say(`payload: ${b.payload.cached ? 'reused' : 'made'} ${b.payload.dir}`);
    },
  };
}

function stickFacts(b: InstallerBuild, job: BuildJob): StickFacts {
  const a = need(b.payloadArtifact, 'payload image');
  const p = need(b.payload, 'payload');
  return {
    image: job.image.name,
    build: job.artifact,
    release: job.release,
    installerBuild: job.artifact,
    payloadImage: a.name,
    payloadBuild: a.build ?? a.name,
    payloadSha256: a.sha256,
    rawSize: p.rawSize,
    dataBytes: p.dataBytes,
    ranges: p.ranges,
    label: job.image.config.installer.label,
    packageFile: b.pkg?.name,
  };
}

/**
 * The data partition's osbake/ directory: the payload, its lists, the nodes' identities and the
 * SHA256SUMS over them, signed with the project key. Returns the keyring the installer trusts.
 */
async function writePayloadDir(
  b: InstallerBuild,
  job: BuildJob,
  osb: string,
  payloadBuild: string,
): Promise<Buffer | undefined> {
  const p = need(b.payload, 'payload');
  await mkdir(osb, { recursive: true });
  // Copied from the payload cache entry (which stays for the next stick of this release).
  const copies: [string, string][] = [
    [p.packedFile, join(osb, 'payload.zst')],
    [p.rangesFile, join(osb, 'payload.ranges')],
    [p.piecesFile, join(osb, 'payload.pieces')],
    [p.bmapFile, join(osb, `${payloadBuild}.bmap`)],
  ];
  const sums: string[] = [];
  for (const [from, to] of copies) {
    await copyFile(from, to);
    sums.push(sha256Line(await sha256File(to), basename(to)));
  }
  // The nodes' identities (nodes: in osbake.yaml), covered by the signed SHA256SUMS.
  const identities = await identitiesText(projectNodes(job.project.config), job.project.root);
  if (identities !== undefined) {
    await writeFile(join(osb, 'nodes.conf'), identities);
    sums.push(sha256Line(await sha256File(join(osb, 'nodes.conf')), 'nodes.conf'));
  }
  await writeFile(join(osb, 'SHA256SUMS'), sums.join(''));
  // Signed with the project key; the installer checks it with keys/ (inside its initramfs).
  const key = signingKeyOf(job.project);
  if (!key) return undefined;
  job.progress.detail(`signing SHA256SUMS with ${key.fingerprint}`);
  await detachSign(key.home, key.fingerprint, join(osb, 'SHA256SUMS'), join(osb, 'SHA256SUMS.asc'), job.log);
  const ring = join(job.workDir, 'trusted.gpg');
  await keyringFromDir(keysDir(job.project), ring, job.log);
  const trusted = await readFile(ring);
  await rm(ring, { force: true });
  return trusted;
}

/** The rest of the data partition: image.txt, --package, README.txt, installer.conf. */
async function writeStickFiles(b: InstallerBuild, content: string, facts: StickFacts): Promise<void> {
  await writeFile(join(content, 'osbake', 'image.txt'), imageTxt(facts));
  if (b.packageFile && b.pkg) {
    await mkdir(join(content, 'package'), { recursive: true });
    await copyFile(b.packageFile, join(content, 'package', b.pkg.name));
    await writeFile(join(content, 'package', `${b.pkg.name}.sha256`), sha256Line(b.pkg.sha256, b.pkg.name));
  }
  await writeFile(join(content, 'README.txt'), readmeTxt(facts));
  await writeFile(join(content, 'installer.conf'), installerConfExample());
}

function stickStep(b: InstallerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'stick',
    title: 'assembling the USB stick image (ESP + ext4 data partition)',
    async run() {
      const os = need(b.os, 'installer OS');
      const p = need(b.payload, 'payload');
      const facts = stickFacts(b, job);
      const content = join(job.workDir, 'content');
      const osb = join(content, 'osbake');
      job.progress.detail('data partition files');
      const trustedKeyring = await writePayloadDir(b, job, osb, facts.payloadBuild);
      await writeStickFiles(b, content, facts);
      const out = join(job.workDir, job.artifactFile);
      const cfg = job.image.config.installer;
      const initrd = join(job.workDir, 'initrd.img');
      const init = await readFile(join(job.image.dir, 'installer', 'init'), 'utf8');
      await initrdWithInit({
        ...(trustedKeyring ? { trustedKeyring } : {}),
        base: os.initrd,
        init,
        libs: await installerLibs(job.image.dir, init),
        work: job.workDir,
        out: initrd,
        log: job.log,
        signal: job.signal,
      });
      const layout = await assembleStick({
        content,
        kernel: os.kernel,
        initrd,
        bootChain: os.bootChain,
        chainRoot: os.chainRoot,
        netChain: os.netChain,
        label: cfg.label,
        kernelArgs: installerKernelArgs(cfg.label, cfg.kernelArgs),
        out,
        work: job.workDir,
        log: job.log,
        signal: job.signal,
        progress: (t) => job.progress.detail(t),
      });
      const payloadBytes = await fileSize(join(osb, 'payload.zst'));
      await rm(content, { recursive: true, force: true });
      b.stick = {
        file: out,
        extra: {
          artifact_kind: 'installer',
          installer: {
            payload_image: facts.payloadImage,
            payload_build: facts.payloadBuild,
            payload_sha256: facts.payloadSha256,
            payload_raw_size: p.rawSize,
            payload_data_bytes: p.dataBytes,
            payload_ranges: p.ranges,
            payload_zst_bytes: payloadBytes,
            stick_bytes: layout.totalBytes,
            kernel: os.kernelVersion,
            installer_os_key: os.key,
            ...(b.pkg ? { package: b.pkg } : {}),
          },
        },
      };
    },
  };
}

/** The stick's block map (for bmaptool and osbake burn), signed; the build's record. */
function stickMapStep(b: InstallerBuild, job: BuildJob): BuilderStep {
  return {
    name: 'stick-map',
    title: 'mapping the stick image (bmap)',
    async run() {
      const stick = need(b.stick, 'stick image');
      const { file: bmap } = await writeBmapFor(stick.file, job.log);
      const companions = [{ src: bmap, name: `${job.artifactFile}.bmap` }];
      // The bmap's detached signature, for bmaptool copy --bmap-sig. Not named IMAGE.bmap.asc or
      // .sig: bmaptool 3.6 (Debian 12) picks those up by itself and then fails for want of the
      // python gpgme module, so a plain bmaptool copy would stop working.
      const key = signingKeyOf(job.project);
      if (key) {
        const sig = `${bmap}-signature.asc`;
        await detachSign(key.home, key.fingerprint, bmap, sig, job.log);
        companions.push({ src: sig, name: `${job.artifactFile}.bmap-signature.asc` });
      }
      b.out = {
        artifactPath: stick.file,
        record: {
          name: job.image.name,
          builder_type: 'osbake-installer',
          build_time: Math.floor(Date.now() / 1000),
          files: [{ name: job.artifactFile, size: await fileSize(stick.file) }],
          artifact_id: job.artifactFile,
          packer_run_uuid: randomUUID(),
        },
        accelerator: 'none',
        extra: stick.extra,
        companions,
      };
    },
  };
}

export function createInstallerBuilder(settings: { packageFile?: string } = {}): Builder {
  const b: InstallerBuild = { packageFile: settings.packageFile };
  return {
    type: 'installer',
    tools: INSTALLER_BUILDER_TOOLS,
    vanilla: 'never',
    patchAccess: { kind: 'none' },
    artifactExt: 'raw',
    bootTest: false,
    checkInputs,
    async preflight(job) {
      job.log.info({ kind: 'installer', release: job.release }, 'installer preflight');
    },
    steps(job) {
      return [
        payloadImageStep(b, job),
        installerOsStep(b, job),
        payloadStep(b, job),
        stickStep(b, job),
        stickMapStep(b, job),
      ];
    },
    output() {
      return need(b.out, 'stick (its steps did not finish)');
    },
    describe: () => 'installer, no VM',
  };
}
