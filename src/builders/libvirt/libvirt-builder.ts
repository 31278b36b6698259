/**
 * The `libvirt` builder, engine `virsh` (the default): osbake drives a hypervisor's libvirt itself
 * with Debian's virsh, no Packer plugin. The cached vanilla disk is uploaded to the hypervisor's
 * pool once per content hash; each build gets an overlay volume and a transient domain (TCG unless
 * a KVM probe guest runs there) that takes a fresh build key through fw_cfg; the image's own
 * playbook runs over SSH through the hypervisor's sshd (host key pinned); the guest is powered
 * off, its overlay downloaded, rebased onto the local vanilla disk and written as a compressed
 * qcow2. Domain and overlay are removed on every exit path; their metadata and names let
 * `osbake clean --hypervisor` find what a killed run left.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../../artifacts/checksum.js';
import type { Hypervisor } from '../../config/project.js';
import { durationToMs } from '../../config/project.js';
import { ProcessError, UserError } from '../../errors.js';
import { run, shellQuote } from '../../exec/run.js';
import { waitForEnter } from '../../log/prompt.js';
import { PLAYBOOK, runPlaybook, writeArtifact, writePlaybookVars } from '../artifact.js';
import type { Builder, BuilderOutput, BuilderStep, BuildJob, PatchAccess } from '../builder.js';
import { BuildVm } from './build-vm.js';
import { overlayVolumeName } from './domain.js';
import { type GuestSsh, guestSshOptions } from './guest-ssh.js';
import { checkLibvirtHost } from './preflight.js';
import { chooseHypervisorAccelerator, type HypervisorAccel } from './remote-accel.js';
import { acquireSlot } from './slot.js';
import { downloadVolumeTo, ensureVanillaVolume, rate, type VirshContext } from './virsh.js';

export const VIRSH_TOOLS = ['virsh', 'ssh', 'ssh-keygen', 'ansible-playbook', 'qemu-img', 'git'];

interface VirshState {
  accel?: HypervisorAccel;
  vm?: BuildVm;
  releaseSlot?: () => Promise<void>;
  upload?: { uploaded: boolean; bytes: number; ms: number };
  download?: { bytes: number; ms: number };
  /** The vanilla disk's SHA-256: its volume's name on the hypervisor. */
  vanillaSha?: string;
  out?: BuilderOutput;
}

/** One build on hypervisor h: its state, shared by the steps below. */
interface VirshBuild {
  h: Hypervisor;
  st: VirshState;
}

const virshCtx = (h: Hypervisor, job: BuildJob): VirshContext & { signal: AbortSignal } => ({
  hypervisor: h,
  log: job.log,
  signal: job.signal,
});

const paths = (job: BuildJob) => ({
  overlay: join(job.workDir, 'overlay.qcow2'),
  vars: join(job.workDir, 'ansible-vars.json'),
  inventory: join(job.workDir, 'inventory.ini'),
});

const hypervisorCache = (job: BuildJob) => join(job.project.workDir, 'cache', 'hypervisors');

export function createVirshBuilder(h: Hypervisor): Builder {
  const b: VirshBuild = { h, st: {} };
  // The build VM reaches the patch bundle at its own 127.0.0.1:PORT, which the master forwards here.
  const patchAccess: PatchAccess = { kind: 'http', url: (port) => `http://127.0.0.1:${port}/` };
  return {
    type: 'libvirt',
    tools: VIRSH_TOOLS,
    vanilla: 'always',
    patchAccess,
    artifactExt: 'qcow2',
    bootTest: true,
    preflight: (job) => preflight(b, job),
    steps(job) {
      return [
        slotStep(b, job),
        uploadStep(b, job),
        bootStep(b, job),
        ansibleStep(b, job),
        finishStep(b, job),
      ];
    },
    output() {
      if (!b.st.out) throw new Error('the libvirt builder has no output (its steps did not finish)');
      return b.st.out;
    },
    describe() {
      return `libvirt on ${h.name}, ${b.st.accel?.accelerator.toUpperCase() ?? 'TCG'}`;
    },
  };
}

/** The playbook, the host (SSH, libvirt, pool) and the accelerator it offers (a KVM probe guest). */
async function preflight({ h, st }: VirshBuild, job: BuildJob): Promise<void> {
  if (!existsSync(join(job.image.dir, PLAYBOOK))) {
    throw new UserError(
      'E_NO_PLAYBOOK',
      `${join(job.image.dir, PLAYBOOK)} does not exist`,
      `the libvirt builder runs the image's ${PLAYBOOK} in the build VM; add it`,
    );
  }
  await checkLibvirtHost(h, {
    log: job.log,
    signal: job.signal,
    progress: (t) => job.progress.detail(t),
  });
  st.accel = await chooseHypervisorAccelerator(virshCtx(h, job), {
    cacheDir: hypervisorCache(job),
    progress: (t) => job.progress.detail(t),
  });
  job.progress.say(
    `hypervisor: ${h.name} (${h.uri}), ${st.accel.accelerator.toUpperCase()}: ${st.accel.reason}`,
  );
}

function slotStep({ h, st }: VirshBuild, job: BuildJob): BuilderStep {
  return {
    name: 'libvirt-slot',
    title: `taking a build slot on ${h.name}`,
    async run() {
      const got = await acquireSlot(h, {
        lockDir: hypervisorCache(job),
        signal: job.signal,
        progress: (t) => job.progress.detail(t),
        waitMs: durationToMs(job.project.config.builder.buildTimeout),
      });
      st.releaseSlot = got.release;
      job.log.info({ hypervisor: h.name, slot: got.slot }, 'build slot');
    },
    async cleanup() {
      await st.releaseSlot?.();
      st.releaseSlot = undefined;
    },
  };
}

function uploadStep({ h, st }: VirshBuild, job: BuildJob): BuilderStep {
  return {
    name: 'libvirt-upload',
    title: `putting the vanilla disk on ${h.name}`,
    async run() {
      if (!job.vanillaDisk) throw new Error('the libvirt builder needs the vanilla disk');
      job.progress.detail('hashing the vanilla disk');
      const sha = await sha256File(job.vanillaDisk);
      st.upload = await ensureVanillaVolume(virshCtx(h, job), {
        disk: job.vanillaDisk,
        sha256: sha,
        lockDir: hypervisorCache(job),
        progress: (t) => job.progress.detail(t),
      });
      job.progress.detail(
        st.upload.uploaded
          ? `uploaded ${st.upload.bytes} bytes in ${Math.round(st.upload.ms / 100) / 10} s (${rate(st.upload.bytes, st.upload.ms)})`
          : `the vanilla disk is already on ${h.name}`,
      );
      st.vanillaSha = sha;
    },
  };
}

function bootStep({ h, st }: VirshBuild, job: BuildJob): BuilderStep {
  return {
    name: 'libvirt-vm',
    title: `starting the build VM on ${h.name}`,
    async run() {
      st.vm = new BuildVm(h, job, st.accel?.accelerator ?? 'tcg');
      await st.vm.boot(st.vanillaSha ?? '');
    },
    async cleanup() {
      await st.vm?.remove();
    },
  };
}

/** --debug: stop with the VM up and say how to reach it. */
async function debugPause(st: VirshState, job: BuildJob, why: string): Promise<void> {
  if (!job.debug || !st.vm?.guest) return;
  await waitForEnter(`${[why, ...st.vm.enterLines()].join('\n')}\npress Enter to go on`, job.signal);
}

function ansibleStep({ h, st }: VirshBuild, job: BuildJob): BuilderStep {
  return {
    name: 'ansible',
    title: `running the image's Ansible playbook in the build VM on ${h.name}`,
    async run() {
      const guest = st.vm?.guest as GuestSsh;
      await debugPause(st, job, '--debug: the build VM is up, before provisioning.');
      const argv = await ansibleArgv(job, guest);
      try {
        await runPlaybook(job, argv, {
          // Every connection rides on osbake's master (ControlPath); ssh_args are split with shlex.
          ANSIBLE_SSH_ARGS: shellQuote([...guestSshOptions(h, guest), '-o', 'ControlMaster=auto']),
          ANSIBLE_PIPELINING: 'True',
        });
      } catch (err) {
        if (err instanceof ProcessError && !job.signal.aborted) {
          await debugPause(st, job, '--debug: a task failed; the build VM is kept until you go on.');
        }
        throw err;
      }
    },
  };
}

/** The playbook's command line, with its variables and an inventory of the one guest written. */
async function ansibleArgv(job: BuildJob, guest: GuestSsh): Promise<string[]> {
  const p = paths(job);
  await writePlaybookVars(job, p.vars);
  await writeFile(
    p.inventory,
    `build-vm ansible_host=127.0.0.1 ansible_port=${guest.port} ansible_user=root\n`,
  );
  return [
    'ansible-playbook',
    '--inventory',
    p.inventory,
    '--private-key',
    guest.key,
    '--extra-vars',
    `@${p.vars}`,
    ...(job.debug ? ['-vvv'] : []),
    join(job.image.dir, PLAYBOOK),
  ];
}

function finishStep({ h, st }: VirshBuild, job: BuildJob): BuilderStep {
  return {
    name: 'libvirt-finish',
    title: `powering off, downloading the disk from ${h.name}, compressing it`,
    async run() {
      const p = paths(job);
      await (st.vm as BuildVm).powerOff();
      st.download = await downloadVolumeTo(virshCtx(h, job), {
        volume: overlayVolumeName(job.buildId),
        dest: p.overlay,
        progress: (t) => job.progress.detail(t),
      });
      // The overlay's backing file is the hypervisor's copy of the vanilla disk; ours has the same
      // bytes (the volume is named by their hash): rebase onto it, then write one compressed qcow2.
      await run(['qemu-img', 'rebase', '-u', '-F', 'qcow2', '-b', job.vanillaDisk as string, p.overlay], {
        log: job.log,
        signal: job.signal,
      });
      st.out = {
        ...(await writeArtifact(job, { source: p.overlay, format: 'qcow2', builder: 'libvirt' })),
        accelerator: `libvirt:${h.name}`,
        extra: {
          hypervisor: h.name,
          hypervisor_uri: h.uri,
          hypervisor_accelerator: st.accel?.accelerator ?? 'tcg',
          libvirt_engine: 'virsh',
          vanilla_upload: st.upload ?? null,
          overlay_download: st.download,
        },
      };
    },
  };
}
