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
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSize, sha256File } from '../../artifacts/checksum.js';
import { acquireLock } from '../../config/lock.js';
import type { Hypervisor } from '../../config/project.js';
import { durationToMs } from '../../config/project.js';
import { sizeToBytes } from '../../distros/disk-image.js';
import { ProcessError, UserError } from '../../errors.js';
import { run, type Service, shellQuote, startService } from '../../exec/run.js';
import { consoleTailLines } from '../../log/console-text.js';
import { waitForEnter } from '../../log/prompt.js';
import type { Builder, BuilderOutput, BuilderStep, BuildJob, PatchAccess } from '../builder.js';
import { provisionVariables } from '../builder.js';
import { ansibleTask, PLAYBOOK, QCOW2_COMPRESSED } from '../chroot/chroot-builder.js';
import { domainName, domainXml, overlayVolumeName, vanillaVolumeName } from './domain.js';
import {
  type GuestSsh,
  guestEnterCommand,
  guestMasterArgs,
  guestSshArgs,
  guestSshOptions,
  hypervisorSshArgv,
} from './guest-ssh.js';
import { checkLibvirtHost } from './preflight.js';
import { chooseHypervisorAccelerator, type HypervisorAccel } from './remote-accel.js';
import { virshUri } from './uri.js';
import {
  createOverlay,
  deleteVolume,
  downloadVolumeTo,
  ensureVanillaVolume,
  rate,
  type VirshContext,
  virsh,
} from './virsh.js';

export const VIRSH_TOOLS = ['virsh', 'ssh', 'ssh-keygen', 'ansible-playbook', 'qemu-img', 'git'];

/** Where virtlogd writes a build VM's serial console on the hypervisor. */
export function consoleLogPath(buildId: string): string {
  return `/var/log/libvirt/qemu/${domainName(buildId)}.serial.log`;
}

/** Did `virsh create` fail because the forwarded port is taken on the hypervisor? */
export function isPortClash(lines: readonly string[]): boolean {
  return lines.some((l) =>
    /host forwarding rule|Address already in use|could not set up host forwarding/i.test(l),
  );
}

/** Does `virsh domstate` say the domain no longer exists? */
export function isNoDomain(lines: readonly string[]): boolean {
  return lines.some((l) => /failed to get domain|Domain not found|no domain with matching name/i.test(l));
}

/** The port of the patch bundle's URL as the build VM sees it (forwarded back by the master). */
export function forwardedPort(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const port = Number(new URL(url).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/**
 * One of the hypervisor's build slots (hypervisors[].slots), as a lock on this machine: two osbake
 * processes here never run more builds on one hypervisor than it has slots. Waits for a free one.
 */
export async function acquireSlot(
  h: Hypervisor,
  o: { lockDir: string; signal: AbortSignal; progress: (t: string) => void; waitMs: number },
): Promise<{ slot: number; release: () => Promise<void> }> {
  await mkdir(o.lockDir, { recursive: true });
  const deadline = Date.now() + o.waitMs;
  let told = false;
  for (;;) {
    for (let slot = 0; slot < h.slots; slot++) {
      try {
        const release = await acquireLock(join(o.lockDir, `${h.name}.slot-${slot}`), {
          what: `build slot ${slot + 1} of ${h.slots} on ${h.name}`,
          waitMs: 0,
          staleMs: 60_000,
        });
        return { slot, release };
      } catch (err) {
        if ((err as { code?: string }).code !== 'E_LOCKED') throw err;
      }
    }
    if (o.signal.aborted) throw o.signal.reason;
    if (Date.now() > deadline) {
      throw new UserError(
        'E_LOCKED',
        `every build slot on ${h.name} (${h.slots}) stayed busy`,
        'other osbake builds on this machine use the hypervisor; wait, or raise hypervisors[].slots',
      );
    }
    if (!told) o.progress(`waiting for a free build slot on ${h.name} (${h.slots} in use)`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

interface VirshState {
  accel?: HypervisorAccel;
  key?: string;
  guest?: GuestSsh;
  master?: Service;
  domainUp: boolean;
  releaseSlot?: () => Promise<void>;
  overlayMade: boolean;
  upload?: { uploaded: boolean; bytes: number; ms: number };
  download?: { bytes: number; ms: number };
  out?: BuilderOutput;
}

export function createVirshBuilder(h: Hypervisor): Builder {
  const st: VirshState = { domainUp: false, overlayMade: false };
  // The build VM reaches the patch bundle at its own 127.0.0.1:PORT, which the master forwards here.
  const patchAccess: PatchAccess = { kind: 'http', url: (port) => `http://127.0.0.1:${port}/` };
  const ctx = (job: BuildJob, withSignal = true): VirshContext => ({
    hypervisor: h,
    log: job.log,
    ...(withSignal ? { signal: job.signal } : {}),
  });
  const paths = (job: BuildJob) => ({
    overlay: join(job.workDir, 'overlay.qcow2'),
    output: join(job.workDir, 'output', job.artifactFile),
    vars: join(job.workDir, 'ansible-vars.json'),
    inventory: join(job.workDir, 'inventory.ini'),
    xml: join(job.workDir, 'domain.xml'),
  });
  const guestSsh = (job: BuildJob, command: string, o: { okCodes?: number[]; timeoutMs?: number } = {}) => {
    if (!st.guest) throw new Error('the build VM is not running');
    return run(guestSshArgs(h, st.guest, command), {
      log: job.log,
      tag: 'ssh',
      signal: job.signal,
      okCodes: o.okCodes,
      timeoutMs: o.timeoutMs ?? 120_000,
      tailLines: 20,
    });
  };

  /** The serial console's last lines (on the hypervisor: read through its sshd). */
  async function consoleTail(job: BuildJob): Promise<string[]> {
    const file = consoleLogPath(job.buildId);
    const hop = hypervisorSshArgv(h);
    const text = hop
      ? await run([...hop, `tail -n 40 ${shellQuote([file])}`], {
          log: job.log,
          okCodes: [1],
          timeoutMs: 30_000,
        }).then(
          (r) => r.stdout,
          () => '',
        )
      : await readFile(file, 'utf8').catch(() => '');
    return consoleTailLines(text, 15);
  }

  async function removeDomain(job: BuildJob): Promise<void> {
    if (!st.domainUp) return;
    await virsh(ctx(job, false), ['destroy', domainName(job.buildId)], { okCodes: [1] }).catch(
      () => undefined,
    );
    st.domainUp = false;
  }

  async function stopMaster(): Promise<void> {
    await st.master?.stop('SIGTERM', 3_000);
    st.master = undefined;
    if (st.guest) await rm(st.guest.control, { force: true });
  }

  /** Define and start the transient domain; a port taken on the hypervisor → another port. */
  async function startDomain(job: BuildJob): Promise<void> {
    const p = paths(job);
    const name = domainName(job.buildId);
    const volume = overlayVolumeName(job.buildId);
    const pub = await readFile(`${st.key}.pub`, 'utf8');
    for (let tries = 1; ; tries++) {
      const port = randomInt(20_000, 60_000);
      st.guest = {
        key: st.key as string,
        port,
        control: join(tmpdir(), `osbake-lv-${process.pid}-${port}`),
      };
      await writeFile(
        p.xml,
        domainXml({
          name,
          type: st.accel?.accelerator === 'kvm' ? 'kvm' : 'qemu',
          memoryMiB: job.image.config.vm.memory ?? job.project.config.vm.memory,
          cpus: job.image.config.vm.cpus ?? job.project.config.vm.cpus,
          pool: h.pool,
          volume,
          authorizedKey: pub,
          sshPort: port,
          consoleLog: consoleLogPath(job.buildId),
          meta: {
            buildId: job.buildId,
            image: job.image.name,
            volumes: [volume],
            machine: hostname(),
            pid: process.pid,
            created: new Date().toISOString(),
          },
        }),
      );
      try {
        await virsh(ctx(job), ['create', p.xml], { what: 'create (the build VM)', timeoutMs: 300_000 });
        st.domainUp = true;
        return;
      } catch (err) {
        if (err instanceof ProcessError && isPortClash(err.outputTail) && tries < 5) continue;
        throw err;
      }
    }
  }

  /** Wait for the guest's SSH through the hypervisor; false when it never answered in time. */
  async function waitForSsh(job: BuildJob): Promise<boolean> {
    const deadline = Date.now() + durationToMs(job.project.config.builder.sshTimeout);
    const t0 = Date.now();
    for (let i = 0; Date.now() < deadline; i++) {
      if (job.signal.aborted) throw job.signal.reason;
      try {
        await guestSsh(job, 'true', { timeoutMs: 40_000 });
        job.log.info({ seconds: (Date.now() - t0) / 1000 }, 'build VM answers SSH');
        return true;
      } catch (err) {
        if (!(err instanceof ProcessError)) throw err;
      }
      // Every few tries: is the domain still there (a guest that powered off will never answer)?
      if (i % 4 === 3) {
        const state = await virsh(ctx(job), ['domstate', domainName(job.buildId)], { okCodes: [1] });
        if (state.exitCode !== 0 && isNoDomain(state.tail)) {
          st.domainUp = false;
          return false;
        }
      }
      job.progress.detail(
        `waiting for the build VM's SSH on ${h.name} (${Math.round((Date.now() - t0) / 1000)} s)`,
      );
      await new Promise((r) => setTimeout(r, 3000));
    }
    return false;
  }

  const slot = (job: BuildJob): BuilderStep => ({
    name: 'libvirt-slot',
    title: `taking a build slot on ${h.name}`,
    async run() {
      const got = await acquireSlot(h, {
        lockDir: join(job.project.workDir, 'cache', 'hypervisors'),
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
  });

  const upload = (job: BuildJob): BuilderStep => ({
    name: 'libvirt-upload',
    title: `putting the vanilla disk on ${h.name}`,
    async run() {
      if (!job.vanillaDisk) throw new Error('the libvirt builder needs the vanilla disk');
      job.progress.detail('hashing the vanilla disk');
      const sha = await sha256File(job.vanillaDisk);
      st.upload = await ensureVanillaVolume(
        { ...ctx(job), signal: job.signal },
        {
          disk: job.vanillaDisk,
          sha256: sha,
          lockDir: join(job.project.workDir, 'cache', 'hypervisors'),
          progress: (t) => job.progress.detail(t),
        },
      );
      job.progress.detail(
        st.upload.uploaded
          ? `uploaded ${st.upload.bytes} bytes in ${Math.round(st.upload.ms / 100) / 10} s (${rate(st.upload.bytes, st.upload.ms)})`
          : `the vanilla disk is already on ${h.name}`,
      );
      vanillaSha = sha;
    },
  });
  let vanillaSha = '';

  const boot = (job: BuildJob): BuilderStep => ({
    name: 'libvirt-vm',
    title: `starting the build VM on ${h.name}`,
    async run() {
      st.key = join(job.workDir, 'build_key');
      await run(
        ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `osbake-${job.buildId}`, '-f', st.key],
        {
          log: job.log,
          signal: job.signal,
        },
      );
      const attempts = 1 + job.project.config.builder.retries;
      const sizeBytes = sizeToBytes(job.image.config.vm.diskSize ?? job.project.config.vm.diskSize);
      for (let attempt = 1; ; attempt++) {
        await createOverlay(ctx(job), {
          volume: overlayVolumeName(job.buildId),
          backing: vanillaVolumeName(vanillaSha),
          sizeBytes,
        });
        st.overlayMade = true;
        await startDomain(job);
        job.progress.detail(
          `booting (${st.accel?.accelerator.toUpperCase() ?? 'TCG'} on ${h.name}, attempt ${attempt}/${attempts})`,
        );
        if (await waitForSsh(job)) break;
        const tail = await consoleTail(job);
        job.log.warn({ attempt, consoleTail: tail }, 'the build VM never answered SSH');
        await removeDomain(job);
        await deleteVolume(ctx(job, false), overlayVolumeName(job.buildId)).catch(() => undefined);
        st.overlayMade = false;
        if (attempt >= attempts || job.signal.aborted) {
          throw new UserError(
            'E_BUILD_VM_SSH',
            `the build VM on ${h.name} never became reachable over SSH (${attempts} attempt(s))`,
            `serial console: ${tail.slice(-4).join(' | ') || 'empty'}; see the build log`,
          );
        }
        job.progress.say(`the build VM never answered SSH (attempt ${attempt}/${attempts}); retrying`);
      }
      // One master connection for every command and Ansible; it also forwards the patch bundle.
      const guest = st.guest as GuestSsh;
      st.master = startService(guestMasterArgs(h, guest, forwardedPort(job.patchRepoUrl)), {
        log: job.log,
        tag: 'ssh-master',
        dieWithParent: true,
      });
      for (let i = 0; i < 100 && !existsSync(guest.control); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!existsSync(guest.control))
        throw new Error('the SSH master connection to the build VM did not start');
      const enter = guestEnterCommand(h, guest);
      job.log.info(
        { ssh: enter, console: `virsh -c ${virshUri(h)} console ${domainName(job.buildId)}` },
        'enter the build VM with',
      );
    },
    async cleanup() {
      await stopMaster();
      await removeDomain(job);
      if (st.overlayMade) {
        await deleteVolume(ctx(job, false), overlayVolumeName(job.buildId)).catch((err: unknown) =>
          job.log.warn({ err }, 'could not remove the overlay volume (osbake clean --hypervisor removes it)'),
        );
        st.overlayMade = false;
      }
    },
  });

  async function debugPause(job: BuildJob, why: string): Promise<void> {
    if (!job.debug || !st.guest) return;
    const lines = [
      why,
      `  enter the build VM:  ${guestEnterCommand(h, st.guest)}`,
      `  its serial console:  virsh -c ${shellQuote([virshUri(h)])} console ${domainName(job.buildId)}`,
    ];
    await waitForEnter(`${lines.join('\n')}\npress Enter to go on`, job.signal);
  }

  const ansible = (job: BuildJob): BuilderStep => ({
    name: 'ansible',
    title: `running the image's Ansible playbook in the build VM on ${h.name}`,
    async run() {
      const p = paths(job);
      const guest = st.guest as GuestSsh;
      await debugPause(job, '--debug: the build VM is up, before provisioning.');
      const vars = {
        ...provisionVariables(job, job.patchRepoUrl ?? ''),
        patch_repo_dir: '',
        ansible_python_interpreter: '/usr/bin/python3',
      };
      await writeFile(p.vars, `${JSON.stringify(vars, null, 2)}\n`);
      await writeFile(
        p.inventory,
        `build-vm ansible_host=127.0.0.1 ansible_port=${guest.port} ansible_user=root\n`,
      );
      const argv = [
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
      try {
        await run(argv, {
          log: job.log,
          tag: 'ansible',
          cwd: job.image.dir,
          signal: job.signal,
          dieWithParent: true,
          echo: job.debug,
          env: {
            // Every connection rides on osbake's master (ControlPath); ssh_args are split with shlex.
            ANSIBLE_SSH_ARGS: shellQuote([...guestSshOptions(h, guest), '-o', 'ControlMaster=auto']),
            ANSIBLE_HOST_KEY_CHECKING: 'False',
            ANSIBLE_PIPELINING: 'True',
            ANSIBLE_NOCOLOR: '1',
            ANSIBLE_FORCE_COLOR: '0',
            ANSIBLE_RETRY_FILES_ENABLED: 'False',
            ANSIBLE_LOCAL_TEMP: join(job.workDir, 'ansible-tmp'),
            PYTHONUNBUFFERED: '1',
          },
          onLine: (line) => {
            const task = ansibleTask(line);
            if (task) job.progress.task(task);
          },
          tailLines: 30,
        });
      } catch (err) {
        if (err instanceof ProcessError && !job.signal.aborted) {
          await debugPause(job, '--debug: a task failed; the build VM is kept until you go on.');
        }
        throw err;
      }
    },
  });

  const finish = (job: BuildJob): BuilderStep => ({
    name: 'libvirt-finish',
    title: `powering off, downloading the disk from ${h.name}, compressing it`,
    async run() {
      const p = paths(job);
      const name = domainName(job.buildId);
      job.progress.detail('discarding free blocks, powering off');
      await guestSsh(job, 'fstrim -a || true; sync');
      await guestSsh(job, 'systemctl poweroff', { okCodes: [255, 143] });
      await stopMaster();
      const deadline = Date.now() + 180_000;
      while (st.domainUp && Date.now() < deadline) {
        const s = await virsh(ctx(job), ['domstate', name], { okCodes: [1] });
        if (s.exitCode !== 0 && isNoDomain(s.tail)) st.domainUp = false;
        else await new Promise((r) => setTimeout(r, 2000));
      }
      if (st.domainUp) {
        job.progress.say('the build VM did not power off within 3 minutes; stopping it');
        await removeDomain(job);
      }
      st.download = await downloadVolumeTo(
        { ...ctx(job), signal: job.signal },
        { volume: overlayVolumeName(job.buildId), dest: p.overlay, progress: (t) => job.progress.detail(t) },
      );
      // The overlay's backing file is the hypervisor's copy of the vanilla disk; ours has the same
      // bytes (the volume is named by their hash): rebase onto it, then write one compressed qcow2.
      await run(['qemu-img', 'rebase', '-u', '-F', 'qcow2', '-b', job.vanillaDisk as string, p.overlay], {
        log: job.log,
        signal: job.signal,
      });
      await mkdir(join(job.workDir, 'output'), { recursive: true });
      job.progress.detail(`converting to ${job.artifactFile}`);
      await run(['qemu-img', 'convert', ...QCOW2_COMPRESSED, '-O', 'qcow2', p.overlay, p.output], {
        log: job.log,
        signal: job.signal,
        echo: job.debug,
      });
      await rm(p.overlay, { force: true });
      st.out = {
        artifactPath: p.output,
        packagesFile: join(job.workDir, 'packages.tsv'),
        packageStateFile: join(job.workDir, job.distro.packageState.file),
        record: {
          name: job.image.name,
          builder_type: 'libvirt',
          build_time: Math.floor(Date.now() / 1000),
          files: [{ name: job.artifactFile, size: await fileSize(p.output) }],
          artifact_id: job.artifactFile,
          packer_run_uuid: randomUUID(),
        },
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
  });

  return {
    type: 'libvirt',
    tools: VIRSH_TOOLS,
    vanilla: 'always',
    patchAccess,
    async preflight(job) {
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
      st.accel = await chooseHypervisorAccelerator(
        { ...ctx(job), signal: job.signal },
        {
          cacheDir: join(job.project.workDir, 'cache', 'hypervisors'),
          progress: (t) => job.progress.detail(t),
        },
      );
      job.progress.say(
        `hypervisor: ${h.name} (${h.uri}), ${st.accel.accelerator.toUpperCase()}: ${st.accel.reason}`,
      );
    },
    steps(job) {
      return [slot(job), upload(job), boot(job), ansible(job), finish(job)];
    },
    output() {
      if (!st.out) throw new Error('the libvirt builder has no output (its steps did not finish)');
      return st.out;
    },
    describe() {
      return `libvirt on ${h.name}, ${st.accel?.accelerator.toUpperCase() ?? 'TCG'}`;
    },
  };
}
