/**
 * The `chroot` builder (as mkosi, KIWI and Packer's amazon-chroot do): no VM. The cached vanilla
 * disk → a raw working copy → loop device, root mounted with /proc /sys /dev and a tmpfs /run →
 * the image's own Ansible playbook over `community.general.chroot` with the same variables as the
 * Packer path → unmount, free blocks discarded → qcow2. Package installs run at native speed.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { capture, run } from '../../exec/run.js';
import { PLAYBOOK, runPlaybook, writeArtifact, writePlaybookVars } from '../artifact.js';
import type { Builder, BuilderOutput, BuilderStep, BuildJob, PatchAccess } from '../builder.js';
import { type ChrootMount, mountChroot } from './mount.js';
import { rebuildRootFromTree } from './reproducible.js';
import { toolVersions } from './tool-versions.js';

export const CHROOT_TOOLS = [
  'ansible-playbook',
  'qemu-img',
  'losetup',
  'partx',
  'blkid',
  'mount',
  'umount',
  'fstrim',
  'chroot',
  'mkfs.ext4',
  'debugfs',
  'dumpe2fs',
  'e2fsck',
  'fallocate',
  'git',
];

/** Where Ansible puts its modules inside the image (removed before the image is closed). */
const REMOTE_TEMP = 'tmp/.ansible-osbake';

/** The ansible-playbook argv of a chroot build (pure). */
export function chrootAnsibleArgs(o: {
  root: string;
  playbook: string;
  varsFile: string;
  debug: boolean;
}): string[] {
  return [
    'ansible-playbook',
    '--inventory',
    `${o.root},`,
    '--connection',
    'community.general.chroot',
    '--extra-vars',
    `@${o.varsFile}`,
    ...(o.debug ? ['-vvv'] : []),
    o.playbook,
  ];
}

/** SOURCE_DATE_EPOCH of a build: its commit's time (git's committer date). */
async function commitTime(job: BuildJob): Promise<number> {
  const out = await capture(['git', '-C', job.project.root, 'show', '-s', '--format=%ct', job.gitCommit], {
    log: job.log,
    signal: job.signal,
  });
  const t = Number(out.trim());
  if (!Number.isSafeInteger(t) || t <= 0) throw new UserError('E_GIT', `no commit time for ${job.gitCommit}`);
  return t;
}

/** One chroot build's state, shared by its steps. */
interface ChrootBuild {
  mount?: ChrootMount;
  out?: BuilderOutput;
}

const paths = (job: BuildJob) => ({
  raw: join(job.workDir, 'disk.raw'),
  root: join(job.workDir, 'root'),
  vars: join(job.workDir, 'ansible-vars.json'),
});

export function createChrootBuilder(): Builder {
  const b: ChrootBuild = {};
  const patchAccess: PatchAccess = { kind: 'http', url: (port) => `http://127.0.0.1:${port}/` };
  return {
    type: 'chroot',
    tools: CHROOT_TOOLS,
    vanilla: 'always',
    patchAccess,
    artifactExt: 'qcow2',
    bootTest: true,
    preflight,
    steps(job) {
      return [copyDiskStep(job), mountStep(b, job), ansibleStep(job), finishStep(b, job)];
    },
    output() {
      if (!b.out) throw new Error('the chroot builder has no output (its steps did not finish)');
      return b.out;
    },
    describe() {
      return 'chroot, no VM';
    },
  };
}

/** The playbook, root (loop devices, mounts, chroot); --var means nothing here (said). */
async function preflight(job: BuildJob): Promise<void> {
  if (!existsSync(join(job.image.dir, PLAYBOOK))) {
    throw new UserError(
      'E_NO_PLAYBOOK',
      `${join(job.image.dir, PLAYBOOK)} does not exist`,
      `the chroot builder runs the image's ${PLAYBOOK}; add it, or build with --builder qemu`,
    );
  }
  if ((job.userVars?.vars.length ?? 0) + (job.userVars?.varFiles.length ?? 0) > 0) {
    job.progress.say(
      'note: --var/--var-file set Packer variables; the chroot builder runs no Packer template',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new UserError(
      'E_NOT_ROOT',
      'the chroot builder needs root (loop devices, mounts, chroot)',
      'run osbake as root (sudo), or build with --builder qemu',
    );
  }
}

function copyDiskStep(job: BuildJob): BuilderStep {
  return {
    name: 'working-copy',
    title: 'copying the vanilla disk to a raw working copy',
    async run() {
      if (!job.vanillaDisk) {
        throw new UserError(
          'E_NO_VANILLA',
          `the chroot builder needs a host-made vanilla disk, and none was made for ${job.image.name}`,
          'build it with --builder qemu or --builder libvirt',
        );
      }
      await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', job.vanillaDisk, paths(job).raw], {
        log: job.log,
        signal: job.signal,
        echo: job.debug,
      });
    },
  };
}

function mountStep(b: ChrootBuild, job: BuildJob): BuilderStep {
  return {
    name: 'chroot-mount',
    title: 'mounting the image for the chroot',
    async run() {
      const p = paths(job);
      b.mount = await mountChroot({
        rawDisk: p.raw,
        root: p.root,
        guards: job.distro.chrootGuards,
        log: job.log,
        signal: job.signal,
      });
      job.progress.detail(`mounted on ${p.root} (${b.mount.loop})`);
    },
    async cleanup() {
      await b.mount?.release();
    },
  };
}

function ansibleStep(job: BuildJob): BuilderStep {
  return {
    name: 'ansible',
    title: "running the image's Ansible playbook in the chroot",
    async run() {
      const p = paths(job);
      // preflight refused a missing playbook before any work.
      const playbook = join(job.image.dir, PLAYBOOK);
      await writePlaybookVars(job, p.vars);
      await runPlaybook(
        job,
        chrootAnsibleArgs({ root: p.root, playbook, varsFile: p.vars, debug: job.debug }),
        {
          ANSIBLE_REMOTE_TEMP: `/${REMOTE_TEMP}`,
        },
      );
    },
  };
}

function finishStep(b: ChrootBuild, job: BuildJob): BuilderStep {
  return {
    name: 'chroot-finish',
    title: 'unmounting, remaking the root from its tree, converting to qcow2',
    async run() {
      const p = paths(job);
      if (!b.mount) throw new Error('the image is not mounted');
      // Ansible's module directory inside the image (the cleanup role's /tmp/* does not match it).
      await rm(join(p.root, REMOTE_TEMP), { recursive: true, force: true });
      await b.mount.release();
      // Same inputs → same bytes: the root made again from its normalised tree (reproducible.ts).
      const sourceDateEpoch = await commitTime(job);
      const reproducible =
        (await rebuildRootFromTree({
          rawDisk: p.raw,
          workDir: job.workDir,
          sourceDateEpoch,
          log: job.log,
          signal: job.signal,
          progress: (t) => job.progress.detail(t),
        })) !== undefined;
      // Compressed clusters (zstd: 1.2 GB → about 430 MB for debian12-base), one coroutine so the
      // clusters are written in one order: the same raw disk gives the same qcow2 bytes.
      b.out = {
        ...(await writeArtifact(job, { source: p.raw, format: 'raw', builder: 'chroot' })),
        accelerator: 'none',
        extra: {
          source_date_epoch: sourceDateEpoch,
          reproducible_root: reproducible,
          tools: await toolVersions(job.log),
        },
      };
    },
  };
}
