/**
 * A libvirt build's VM on the hypervisor, from its overlay volume to its removal: the build key,
 * the transient domain (a port taken there → another port), the wait for its SSH through the
 * hypervisor with bounded retries, the one SSH master every command and Ansible ride on, power-off,
 * and removal of domain and overlay on every exit path.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hypervisor } from '../../config/project.js';
import { durationToMs } from '../../config/project.js';
import { sizeToBytes } from '../../distros/disk-image.js';
import { ProcessError, UserError } from '../../errors.js';
import { run, type Service, shellQuote, startService } from '../../exec/run.js';
import { consoleTailLines } from '../../log/console-text.js';
import type { BuildJob } from '../builder.js';
import {
  consoleLogPath,
  domainName,
  domainXml,
  isNoDomain,
  isPortClash,
  overlayVolumeName,
  vanillaVolumeName,
} from './domain.js';
import {
  forwardedPort,
  type GuestSsh,
  guestEnterCommand,
  guestMasterArgs,
  guestSshArgs,
  hypervisorSshArgv,
} from './guest-ssh.js';
import { virshUri } from './uri.js';
import { createOverlay, deleteVolume, type VirshContext, virsh } from './virsh.js';

export class BuildVm {
  guest?: GuestSsh;
  private master?: Service;
  private domainUp = false;
  private overlayMade = false;

  constructor(
    private readonly h: Hypervisor,
    private readonly job: BuildJob,
    private readonly accelerator: 'kvm' | 'tcg',
  ) {}

  private ctx(withSignal = true): VirshContext {
    return { hypervisor: this.h, log: this.job.log, ...(withSignal ? { signal: this.job.signal } : {}) };
  }

  /** A command in the build VM (through the master once it runs). */
  ssh(command: string, o: { okCodes?: number[]; timeoutMs?: number } = {}) {
    if (!this.guest) throw new Error('the build VM is not running');
    return run(guestSshArgs(this.h, this.guest, command), {
      log: this.job.log,
      tag: 'ssh',
      signal: this.job.signal,
      okCodes: o.okCodes,
      timeoutMs: o.timeoutMs ?? 120_000,
      tailLines: 20,
    });
  }

  /** How a person gets into the running build VM (--debug, the log). */
  enterLines(): string[] {
    if (!this.guest) return [];
    return [
      `  enter the build VM:  ${guestEnterCommand(this.h, this.guest)}`,
      `  its serial console:  virsh -c ${shellQuote([virshUri(this.h)])} console ${domainName(this.job.buildId)}`,
    ];
  }

  /**
   * Overlay on the vanilla volume, domain, SSH; a guest that never answers is torn down and
   * started again (builder.retries), then E_BUILD_VM_SSH with the console's last lines.
   */
  async boot(vanillaSha: string): Promise<void> {
    const job = this.job;
    const key = join(job.workDir, 'build_key');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `osbake-${job.buildId}`, '-f', key], {
      log: job.log,
      signal: job.signal,
    });
    const attempts = 1 + job.project.config.builder.retries;
    const sizeBytes = sizeToBytes(job.image.config.vm.diskSize ?? job.project.config.vm.diskSize);
    for (let attempt = 1; ; attempt++) {
      await createOverlay(this.ctx(), {
        volume: overlayVolumeName(job.buildId),
        backing: vanillaVolumeName(vanillaSha),
        sizeBytes,
      });
      this.overlayMade = true;
      await this.startDomain(key);
      job.progress.detail(
        `booting (${this.accelerator.toUpperCase()} on ${this.h.name}, attempt ${attempt}/${attempts})`,
      );
      if (await this.waitForSsh()) break;
      const tail = await this.consoleTail();
      job.log.warn({ attempt, consoleTail: tail }, 'the build VM never answered SSH');
      await this.removeDomain();
      await deleteVolume(this.ctx(false), overlayVolumeName(job.buildId)).catch(() => undefined);
      this.overlayMade = false;
      if (attempt >= attempts || job.signal.aborted) {
        throw new UserError(
          'E_BUILD_VM_SSH',
          `the build VM on ${this.h.name} never became reachable over SSH (${attempts} attempt(s))`,
          `serial console: ${tail.slice(-4).join(' | ') || 'empty'}; see the build log`,
        );
      }
      job.progress.say(`the build VM never answered SSH (attempt ${attempt}/${attempts}); retrying`);
    }
    await this.startMaster();
  }

  /** One master connection for every command and Ansible; it also forwards the patch bundle. */
  private async startMaster(): Promise<void> {
    const guest = this.guest as GuestSsh;
    this.master = startService(guestMasterArgs(this.h, guest, forwardedPort(this.job.patchRepoUrl)), {
      log: this.job.log,
      tag: 'ssh-master',
      dieWithParent: true,
    });
    for (let i = 0; i < 100 && !existsSync(guest.control); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!existsSync(guest.control))
      throw new Error('the SSH master connection to the build VM did not start');
    this.job.log.info(
      {
        ssh: guestEnterCommand(this.h, guest),
        console: `virsh -c ${virshUri(this.h)} console ${domainName(this.job.buildId)}`,
      },
      'enter the build VM with',
    );
  }

  /** fstrim, poweroff, and wait (3 min) until the domain is gone. */
  async powerOff(): Promise<void> {
    this.job.progress.detail('discarding free blocks, powering off');
    await this.ssh('fstrim -a || true; sync');
    await this.ssh('systemctl poweroff', { okCodes: [255, 143] });
    await this.stopMaster();
    const deadline = Date.now() + 180_000;
    while (this.domainUp && Date.now() < deadline) {
      const s = await virsh(this.ctx(), ['domstate', domainName(this.job.buildId)], { okCodes: [1] });
      if (s.exitCode !== 0 && isNoDomain(s.tail)) this.domainUp = false;
      else await new Promise((r) => setTimeout(r, 2000));
    }
    if (this.domainUp) {
      this.job.progress.say('the build VM did not power off within 3 minutes; stopping it');
      await this.removeDomain();
    }
  }

  /** Master, domain and overlay volume gone (after success, failure or Ctrl-C). */
  async remove(): Promise<void> {
    await this.stopMaster();
    await this.removeDomain();
    if (this.overlayMade) {
      await deleteVolume(this.ctx(false), overlayVolumeName(this.job.buildId)).catch((err: unknown) =>
        this.job.log.warn(
          { err },
          'could not remove the overlay volume (osbake clean --hypervisor removes it)',
        ),
      );
      this.overlayMade = false;
    }
  }

  /** The serial console's last lines (on the hypervisor: read through its sshd). */
  private async consoleTail(): Promise<string[]> {
    const file = consoleLogPath(this.job.buildId);
    const hop = hypervisorSshArgv(this.h);
    const text = hop
      ? await run([...hop, `tail -n 40 ${shellQuote([file])}`], {
          log: this.job.log,
          okCodes: [1],
          timeoutMs: 30_000,
        }).then(
          (r) => r.stdout,
          () => '',
        )
      : await readFile(file, 'utf8').catch(() => '');
    return consoleTailLines(text, 15);
  }

  private async removeDomain(): Promise<void> {
    if (!this.domainUp) return;
    await virsh(this.ctx(false), ['destroy', domainName(this.job.buildId)], { okCodes: [1] }).catch(
      () => undefined,
    );
    this.domainUp = false;
  }

  private async stopMaster(): Promise<void> {
    await this.master?.stop('SIGTERM', 3_000);
    this.master = undefined;
    if (this.guest) await rm(this.guest.control, { force: true });
  }

  /** Define and start the transient domain; a port taken on the hypervisor → another port. */
  private async startDomain(key: string): Promise<void> {
    const job = this.job;
    const xmlFile = join(job.workDir, 'domain.xml');
    const name = domainName(job.buildId);
    const volume = overlayVolumeName(job.buildId);
    const pub = await readFile(`${key}.pub`, 'utf8');
    for (let tries = 1; ; tries++) {
      const port = randomInt(20_000, 60_000);
      this.guest = { key, port, control: join(tmpdir(), `osbake-lv-${process.pid}-${port}`) };
      await writeFile(
        xmlFile,
        domainXml({
          name,
          type: this.accelerator === 'kvm' ? 'kvm' : 'qemu',
          memoryMiB: job.image.config.vm.memory ?? job.project.config.vm.memory,
          cpus: job.image.config.vm.cpus ?? job.project.config.vm.cpus,
          pool: this.h.pool,
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
        await virsh(this.ctx(), ['create', xmlFile], { what: 'create (the build VM)', timeoutMs: 300_000 });
        this.domainUp = true;
        return;
      } catch (err) {
        if (err instanceof ProcessError && isPortClash(err.outputTail) && tries < 5) continue;
        throw err;
      }
    }
  }

  /** Wait for the guest's SSH through the hypervisor; false when it never answered in time. */
  private async waitForSsh(): Promise<boolean> {
    const job = this.job;
    const deadline = Date.now() + durationToMs(job.project.config.builder.sshTimeout);
    const t0 = Date.now();
    for (let i = 0; Date.now() < deadline; i++) {
      if (job.signal.aborted) throw job.signal.reason;
      try {
        await this.ssh('true', { timeoutMs: 40_000 });
        job.log.info({ seconds: (Date.now() - t0) / 1000 }, 'build VM answers SSH');
        return true;
      } catch (err) {
        if (!(err instanceof ProcessError)) throw err;
      }
      // Every few tries: is the domain still there (a guest that powered off will never answer)?
      if (i % 4 === 3) {
        const state = await virsh(this.ctx(), ['domstate', domainName(job.buildId)], { okCodes: [1] });
        if (state.exitCode !== 0 && isNoDomain(state.tail)) {
          this.domainUp = false;
          return false;
        }
      }
      job.progress.detail(
        `waiting for the build VM's SSH on ${this.h.name} (${Math.round((Date.now() - t0) / 1000)} s)`,
      );
      await new Promise((r) => setTimeout(r, 3000));
    }
    return false;
  }
}
