/**
 * The steps of `osbake build <image>` for `kind: installer` images (the usb-installer): no Packer
 * VM, the stick is assembled on the host. Shares preflight, publish, record and commit with
 * Packer builds:
 *   preflight → payload-image → installer-os → payload → stick → post-process → publish → record → commit
 */

import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileSize, sha256File, sha256Line } from '../artifacts/checksum.js';
import { readBuildsManifest } from '../config/builds.js';
import { projectNodes } from '../config/nodes.js';
import { loadReleases, type ReleaseArtifact, releasesFile, requireRelease } from '../config/releases.js';
import { UserError } from '../errors.js';
import { initrdWithInit, installerLibs } from '../installer/initramfs.js';
import { ensureInstallerOs, type InstallerOs } from '../installer/installer-os.js';
import { identitiesText } from '../installer/node-identity.js';
import { type PreparedPayload, preparePayload } from '../installer/payload.js';
import { assembleStick } from '../installer/stick.js';
import {
  imageTxt,
  installerConfExample,
  installerKernelArgs,
  readmeTxt,
  type StickFacts,
} from '../installer/stick-layout.js';
import { ByteProgress } from '../log/progress.js';
import { writeBmapFor } from '../media/bmap.js';
import { manifestFileOf } from '../release/image-builds.js';
import { imageArtifact, latestCleanBuild } from '../release/plan.js';
import { checkStoreArtifact } from '../release/verify-artifact.js';
import { detachSign, keyringFromDir, requireSecretKey } from '../signing/gpg.js';
import { keysDir, signingKeyOf } from '../signing/project-keys.js';
import type { BuildContext } from './context.js';
import type { Step } from './step.js';
import { commit } from './steps/commit.js';
import { preflight } from './steps/preflight.js';
import { publish } from './steps/publish.js';
import { record } from './steps/record.js';

/** Installer state carried between the steps. */
export interface InstallerState {
  payloadArtifact?: ReleaseArtifact;
  os?: InstallerOs;
  payload?: PreparedPayload;
  content?: string;
  packageFile?: { name: string; sha256: string; size: number };
}

const state = new WeakMap<BuildContext, InstallerState>();
export function installerState(ctx: BuildContext): InstallerState {
  let s = state.get(ctx);
  if (!s) {
    s = {};
    state.set(ctx, s);
  }
  return s;
}

/** The payload image of release R as manifest.yaml records it (pure). */
export function findPayloadArtifact(
  artifacts: readonly ReleaseArtifact[],
  image: string,
  release: string,
): ReleaseArtifact {
  const found = artifacts.find((a) => a.kind === 'image' && a.name === image);
  if (found) return found;
  const images = artifacts.filter((a) => a.kind === 'image').map((a) => a.name);
  throw new UserError(
    'E_NO_PAYLOAD',
    `release ${release} has no image ${image} to put on the installer`,
    images.length > 0
      ? `release ${release} has: ${images.join(', ')} (set installer.payload in image.yaml)`
      : `build and release it first: osbake build ${image} --release ${release} && osbake release ${release}`,
  );
}

/**
 * Release R's payload image: as manifest.yaml records it; when R does not record it yet (osbake
 * build --all builds the base image, then the installer, before anyone runs osbake release), the
 * latest clean build of the payload image for R from its manifest.json.
 */
async function payloadOfRelease(ctx: BuildContext, release: string, quiet = false): Promise<ReleaseArtifact> {
  const payload = ctx.image.config.installer.payload;
  const file = releasesFile(ctx.project);
  const releases = await loadReleases(file);
  const recorded = releases.releases[release]?.artifacts.find(
    (x) => x.kind === 'image' && x.name === payload,
  );
  if (recorded) return recorded;
  const builds = manifestFileOf(ctx.project, payload);
  const build = existsSync(builds)
    ? latestCleanBuild((await readBuildsManifest(builds)).builds, release)
    : undefined;
  if (!build) {
    const r = requireRelease(file, releases, release);
    return findPayloadArtifact(r.artifacts, payload, release);
  }
  if (!quiet) {
    ctx.progress.say(
      `release ${release} does not record ${payload} yet: using its latest clean build ${build.custom_data.artifact}`,
    );
  }
  return imageArtifact(payload, build);
}

/** Before the tools and the work dir: release R and its payload image exist (bad input first). */
const releaseCheck: Step<BuildContext> = {
  name: 'release-check',
  title: "checking release R's image in the store",
  async run(ctx) {
    await payloadOfRelease(ctx, ctx.req.release as string, true);
    // The stick's SHA256SUMS is signed at the end: a missing secret key is said now.
    const key = signingKeyOf(ctx.project);
    if (key) await requireSecretKey(key.home, key.fingerprint, ctx.log);
    // The nodes' identities go onto the stick: their files' sources are read now, and the
    // installer's libraries must be there (bad input first).
    await identitiesText(projectNodes(ctx.project.config), ctx.project.root);
    await installerLibs(ctx.image.dir, await readFile(join(ctx.image.dir, 'installer', 'init'), 'utf8'));
  },
};

const payloadImage: Step<BuildContext> = {
  name: 'payload-image',
  title: "checking release R's image in the store",
  async run(ctx) {
    const release = ctx.req.release as string;
    const a = await payloadOfRelease(ctx, release);
    if (!a.path.endsWith('.qcow2')) {
      throw new UserError(
        'E_NO_PAYLOAD',
        `${a.path} is not a qcow2 image`,
        'the payload must be a Packer image',
      );
    }
    const check = await checkStoreArtifact(ctx.project.storeDir, a, new ByteProgress());
    if (check.status !== 'OK') {
      throw new UserError(
        'E_STORE',
        `${check.location}: ${check.status} (manifest.yaml records sha256 ${a.sha256}, size ${a.size})`,
        'restore the image in the store (osbake verify R shows what is wrong)',
      );
    }
    installerState(ctx).payloadArtifact = a;
    ctx.progress.say(`payload: ${a.build ?? a.path} (${a.sha256.slice(0, 12)}…)`);
    if (ctx.req.packageFile) {
      const size = await fileSize(ctx.req.packageFile).catch(() => {
        throw new UserError(
          'E_USAGE',
          `--package ${ctx.req.packageFile}: no such file`,
          'give an existing file',
        );
      });
      const sha256 = await sha256File(ctx.req.packageFile);
      installerState(ctx).packageFile = { name: basename(ctx.req.packageFile), sha256, size };
    }
  },
};

const installerOs: Step<BuildContext> = {
  name: 'installer-os',
  title: 'preparing the installer OS (kernel + busybox initramfs)',
  async run(ctx) {
    const os = await ensureInstallerOs({
      project: ctx.project,
      image: ctx.image,
      scratchDir: ctx.plan.workDir,
      log: ctx.log,
      signal: ctx.signal,
      progress: (t) => ctx.progress.detail(t),
    });
    installerState(ctx).os = os;
    ctx.progress.say(
      `installer OS: ${os.cached ? 'reused' : 'built'} ${os.dir} (kernel ${os.kernelVersion})`,
    );
  },
};

const payload: Step<BuildContext> = {
  name: 'payload',
  title: 'preparing the payload (raw, block map, data ranges, zstd)',
  async run(ctx) {
    const st = installerState(ctx);
    const a = st.payloadArtifact as ReleaseArtifact;
    const dir = join(ctx.plan.workDir, 'payload');
    await mkdir(dir, { recursive: true });
    st.payload = await preparePayload({
      image: join(ctx.project.storeDir, a.path),
      dir,
      name: a.build ?? a.name,
      log: ctx.log,
      signal: ctx.signal,
      progress: (t) => ctx.progress.detail(t),
      bytes: new ByteProgress(),
      level: ctx.image.config.installer.compressionLevel,
    });
    // The stick does not need the raw image (only its data ranges).
    await rm(st.payload.raw, { force: true });
  },
};

function stickFacts(ctx: BuildContext): StickFacts {
  const st = installerState(ctx);
  const a = st.payloadArtifact as ReleaseArtifact;
  const p = st.payload as PreparedPayload;
  return {
    image: ctx.image.name,
    build: ctx.plan.artifact,
    release: ctx.req.release as string,
    installerBuild: ctx.plan.artifact,
    payloadImage: a.name,
    payloadBuild: a.build ?? a.name,
    payloadSha256: a.sha256,
    rawSize: p.rawSize,
    dataBytes: p.dataBytes,
    ranges: p.ranges,
    label: ctx.image.config.installer.label,
    packageFile: st.packageFile?.name,
  };
}

const stick: Step<BuildContext> = {
  name: 'stick',
  title: 'assembling the USB stick image (ESP + ext4 data partition)',
  async run(ctx) {
    const st = installerState(ctx);
    const p = st.payload as PreparedPayload;
    const os = st.os as InstallerOs;
    const facts = stickFacts(ctx);
    const content = join(ctx.plan.workDir, 'content');
    const osb = join(content, 'osbake');
    await mkdir(osb, { recursive: true });
    ctx.progress.detail('data partition files');
    const moves: [string, string][] = [
      [p.packedFile, join(osb, 'payload.zst')],
      [p.rangesFile, join(osb, 'payload.ranges')],
      [p.piecesFile, join(osb, 'payload.pieces')],
      [p.bmapFile, join(osb, `${facts.payloadBuild}.bmap`)],
    ];
    const sums: string[] = [];
    for (const [from, to] of moves) {
      await copyFile(from, to);
      await rm(from, { force: true });
      sums.push(sha256Line(await sha256File(to), basename(to)));
    }
    // The nodes' identities (nodes: in osbake.yaml), covered by the signed SHA256SUMS.
    const identities = await identitiesText(projectNodes(ctx.project.config), ctx.project.root);
    if (identities !== undefined) {
      await writeFile(join(osb, 'nodes.conf'), identities);
      sums.push(sha256Line(await sha256File(join(osb, 'nodes.conf')), 'nodes.conf'));
    }
    await writeFile(join(osb, 'SHA256SUMS'), sums.join(''));
    // Signed with the project key; the installer checks it with keys/ (inside its initramfs).
    const key = signingKeyOf(ctx.project);
    let trustedKeyring: Buffer | undefined;
    if (key) {
      ctx.progress.detail(`signing SHA256SUMS with ${key.fingerprint}`);
      await detachSign(
        key.home,
        key.fingerprint,
        join(osb, 'SHA256SUMS'),
        join(osb, 'SHA256SUMS.asc'),
        ctx.log,
      );
      const ring = join(ctx.plan.workDir, 'trusted.gpg');
      await keyringFromDir(keysDir(ctx.project), ring, ctx.log);
      trustedKeyring = await readFile(ring);
      await rm(ring, { force: true });
    }
    await writeFile(join(osb, 'image.txt'), imageTxt(facts));
    if (ctx.req.packageFile && st.packageFile) {
      await mkdir(join(content, 'package'), { recursive: true });
      await copyFile(ctx.req.packageFile, join(content, 'package', st.packageFile.name));
      await writeFile(
        join(content, 'package', `${st.packageFile.name}.sha256`),
        sha256Line(st.packageFile.sha256, st.packageFile.name),
      );
    }
    await writeFile(join(content, 'README.txt'), readmeTxt(facts));
    await writeFile(join(content, 'installer.conf'), installerConfExample());
    const out = join(ctx.plan.workDir, ctx.plan.artifactFile);
    const cfg = ctx.image.config.installer;
    const initrd = join(ctx.plan.workDir, 'initrd.img');
    const init = await readFile(join(ctx.image.dir, 'installer', 'init'), 'utf8');
    await initrdWithInit({
      ...(trustedKeyring ? { trustedKeyring } : {}),
      base: os.initrd,
      init,
      libs: await installerLibs(ctx.image.dir, init),
      work: ctx.plan.workDir,
      out: initrd,
      log: ctx.log,
      signal: ctx.signal,
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
      work: ctx.plan.workDir,
      log: ctx.log,
      signal: ctx.signal,
      progress: (t) => ctx.progress.detail(t),
    });
    const payloadBytes = await fileSize(join(osb, 'payload.zst'));
    await rm(content, { recursive: true, force: true });
    ctx.artifactPath = out;
    ctx.recordExtra = {
      ...ctx.recordExtra,
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
        ...(st.packageFile ? { package: st.packageFile } : {}),
      },
    };
  },
};

const postProcess: Step<BuildContext> = {
  name: 'post-process',
  title: 'checksumming and mapping the stick image',
  async run(ctx) {
    const file = ctx.artifactPath as string;
    ctx.size = await fileSize(file);
    const bytes = new ByteProgress();
    bytes.start(`sha256 ${ctx.plan.artifactFile}`, ctx.size);
    ctx.sha256 = await sha256File(file, (n) => bytes.add(n));
    bytes.end();
    const { file: bmap } = await writeBmapFor(file, ctx.log);
    ctx.extraArtifacts = [{ src: bmap, name: `${ctx.plan.artifactFile}.bmap` }];
    // The bmap's detached signature, for bmaptool copy --bmap-sig. Not named IMAGE.bmap.asc or
    // .sig: bmaptool 3.6 (Debian 12) picks those up by itself and then fails for want of the
    // python gpgme module, so a plain bmaptool copy would stop working.
    const key = signingKeyOf(ctx.project);
    if (key) {
      const sig = `${bmap}-signature.asc`;
      await detachSign(key.home, key.fingerprint, bmap, sig, ctx.log);
      ctx.extraArtifacts.push({ src: sig, name: `${ctx.plan.artifactFile}.bmap-signature.asc` });
    }
    ctx.packages = [];
    ctx.recordAs = {
      name: ctx.image.name,
      builder_type: 'osbake-installer',
      build_time: Math.floor(Date.now() / 1000),
      files: [{ name: ctx.plan.artifactFile, size: ctx.size }],
      artifact_id: ctx.plan.artifactFile,
      packer_run_uuid: randomUUID(),
    };
  },
};

export const INSTALLER_STEPS: Step<BuildContext>[] = [
  releaseCheck,
  preflight,
  payloadImage,
  installerOs,
  payload,
  stick,
  postProcess,
  publish,
  record,
  commit,
];
