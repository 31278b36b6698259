import { randomUUID } from 'node:crypto';
/** osbake.yaml: the project configuration (store, mirrors, builder defaults, VM size, hypervisors). */
import { existsSync } from 'node:fs';
import { rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { makeDirsSync } from '../fsx/input.js';
import { ledgerOf, useLedger } from '../fsx/owned.js';
import { loadYamlConfig } from './load.js';
import { NetbootSchema } from './netboot.js';
import { checkNodes, NodeSchema } from './nodes.js';
import { parseSshAddress, parseSshUrl } from './ssh-target.js';

export const PROJECT_FILE = 'osbake.yaml';

const url = z.string().regex(/^(https?|file):\/\/[^\s]+$/, 'must be an http://, https:// or file:// URL');
/** A disk size: 2G (a root file system with a kernel) up to 64T, with a unit suffix M or G. */
export const diskSize = z
  .string()
  .regex(/^\d{1,9}[MG]$/, 'must be a size like 4096M or 8G')
  .refine((v) => {
    if (!/^\d{1,9}[MG]$/.test(v)) return true; // the regex says what is wrong
    const b = Number(v.slice(0, -1)) * (v.endsWith('G') ? 1024 : 1);
    return b >= 2048 && b <= 64 * 1024 * 1024;
  }, 'must be from 2G to 64T (a bootable root file system needs at least 2G)')
  .describe('disk size with a unit suffix M or G');
const size = diskSize;

/** A directory path from the config: not empty, one line, no NUL. */
const dirPath = z
  .string()
  .min(1, 'must not be empty')
  .regex(/^[^\0\n\r]+$/, 'must be a path on one line');

/** VM memory in MiB: 512 MiB to 1 TiB. */
export const vmMemory = z
  .number()
  .int()
  .min(512)
  .max(1024 * 1024, 'must be at most 1048576 MiB (1 TiB)');
export const vmCpus = z.number().int().min(1).max(256);

/**
 * The libvirt URI forms packer-plugin-libvirt accepts (its LibvirtUri regex): lower-case user and
 * host, e.g. qemu+ssh://root@kvm1.example.org/system. osbake adds ?keyfile=&known_hosts= itself.
 */
export const LIBVIRT_URI_RE =
  /^qemu(\+ssh)?:\/\/(([a-z][a-z0-9_-]*@)?[-_.a-z0-9]+(:[0-9]+)?)?\/(system|session)$/;

/** A zod refinement from one of config/ssh-target's parsers (one definition of an SSH target). */
function parses(parse: (s: string) => unknown): (s: string) => boolean {
  return (s) => {
    try {
      parse(s);
      return true;
    } catch {
      return false;
    }
  };
}

/** A path in the config: not empty, on one line. */
function dirPathOf(what: string) {
  return z
    .string()
    .min(1, 'must not be empty')
    .regex(/^[^\0\n\r]+$/, `must be ${what} on one line`);
}

/** A libvirt object name (pool, volume, network): no spaces, slashes or newlines. */
const libvirtName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/, 'must be a libvirt name (letters, digits, _ . + -)');

export const HypervisorSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be letters, digits, dots, dashes or underscores')
      .describe('name used with --hypervisor'),
    uri: z
      .string()
      .regex(
        LIBVIRT_URI_RE,
        'must be a libvirt URI like qemu+ssh://root@host/system (lower-case, no ?parameters: osbake adds keyfile and known_hosts)',
      )
      .describe('libvirt connection URI (qemu+ssh://root@HOST/system)'),
    sshKey: dirPathOf('a key file path').describe(
      'private key for SSH to the hypervisor (libvirt transport) and to the build VM cloned from the vanilla volume',
    ),
    knownHosts: dirPathOf('a file path')
      .default('~/.ssh/known_hosts')
      .describe('known_hosts file that holds the hypervisor host key (the libvirt plugin verifies it)'),
    bastion: z
      .string()
      .refine(parses(parseSshAddress), 'must be [user@]host[:port] (port 1-65535)')
      .optional()
      .describe('SSH bastion ([user@]host[:port]) through which the build VM is reached'),
    pool: libvirtName
      .default('default')
      .describe(
        "libvirt storage pool for osbake's volumes (the uploaded vanilla disk, each build's overlay)",
      ),
    engine: z
      .enum(['virsh', 'packer'])
      .default('virsh')
      .describe(
        'virsh: osbake drives libvirt itself (Debian tools, no plugin); packer: Packer >= 1.7 with packer-plugin-libvirt',
      ),
    slots: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('builds this hypervisor runs at once (build --all)'),
    accelerator: z
      .enum(['auto', 'kvm', 'tcg'])
      .default('auto')
      .describe('auto: KVM when a probe guest runs under it on the hypervisor, else TCG (engine virsh)'),
    vanillaVolume: libvirtName
      .optional()
      .describe(
        "engine packer: the pre-made vanilla qcow2 volume in the pool, cloned for every build (engine virsh uploads osbake's own)",
      ),
    network: libvirtName
      .default('default')
      .describe(
        'engine packer: libvirt managed network the build VM is attached to (engine virsh uses user networking)',
      ),
  })
  .strict()
  .refine((h) => h.engine !== 'packer' || h.vanillaVolume !== undefined, {
    message: 'engine packer needs vanillaVolume (the pre-made vanilla volume in the pool)',
    path: ['vanillaVolume'],
  });

export type Hypervisor = z.output<typeof HypervisorSchema>;

export const ProjectConfigSchema = z
  .object({
    store: dirPath.default('store').describe('local artifact store directory (builds/, repos/, releases/)'),
    workDir: dirPath.default('.osbake').describe('cache of vanilla disks and per-build work directories'),
    outDir: dirPath.default('out').describe('build logs: out/<image>-<hash>.log'),
    mirrors: z
      .object({
        debian: z
          .object({
            main: url
              .default('http://deb.debian.org/debian')
              .describe('mirror for bookworm and bookworm-updates'),
            security: url
              .default('http://deb.debian.org/debian-security')
              .describe('mirror for bookworm-security (new layout: <suite>-security)'),
          })
          .strict()
          .prefault({}),
        osbake: url
          .optional()
          .describe(
            'HTTP root of an osbake artifact mirror (osbake serve): a release artifact missing from the store is fetched from here',
          ),
        rocky: z
          .object({
            baseos: url
              .optional()
              .describe("BaseOS baseurl during Rocky builds (default: the image's repo files)"),
            appstream: url.optional().describe('AppStream baseurl during Rocky builds'),
            powertools: url.optional().describe('PowerTools baseurl during Rocky builds'),
            epel: url.optional().describe('EPEL 8 baseurl during Rocky builds'),
            gpgkey: url
              .default('https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-8')
              .describe(
                "Rocky's package signing key (dnf --installroot of the chroot builder's vanilla disk)",
              ),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    builder: z
      .object({
        type: z
          .enum(['auto', 'chroot', 'qemu', 'libvirt'])
          .default('auto')
          .describe(
            'auto: qemu when KVM works, else chroot; chroot: no VM, Ansible in a chroot of the image; qemu: Packer with a local VM (KVM/TCG); libvirt: Packer on a configured hypervisor (--builder overrides)',
          ),
        accelerator: z
          .enum(['auto', 'kvm', 'tcg'])
          .default('auto')
          .describe('auto probes KVM briefly and falls back to TCG'),
        kvmProbeTimeoutMs: z
          .number()
          .int()
          .positive()
          .max(600_000)
          .default(4000)
          .describe('KVM probe timeout'),
        sshTimeout: z
          .string()
          .regex(/^\d+[smh]$/, 'must be a duration like 300s or 10m')
          .default('10m')
          .describe('how long Packer waits for SSH in the build VM'),
        buildTimeout: z
          .string()
          .regex(/^\d+[smh]$/, 'must be a duration like 90m or 2h')
          .default('90m')
          .describe('the whole packer build is stopped (and cleaned up) after this long'),
        retries: z
          .number()
          .int()
          .min(0)
          .max(3)
          .default(1)
          .describe('retries of a build whose VM never reached SSH (TCG boots occasionally hang)'),
      })
      .strict()
      .prefault({}),
    vm: z
      .object({
        cpus: vmCpus.default(2),
        memory: vmMemory.default(2048).describe('MiB'),
        diskSize: size.default('8G'),
      })
      .strict()
      .prefault({}),
    hypervisors: z
      .array(HypervisorSchema)
      .default([])
      .describe('libvirt hosts for builder.type libvirt; osbake build --all spreads builds over them'),
    publish: z
      .object({
        to: z
          .string()
          .refine(parses(parseSshUrl), 'must be an ssh:// URL like ssh://deploy@mirror.example/srv/osbake')
          .optional()
          .describe('remote mirror for osbake publish (and after each build): ssh://user@host[:port]/path'),
        knownHosts: dirPathOf('a file path')
          .optional()
          .describe(
            "known_hosts file with the mirror's host key (default ~/.ssh/known_hosts); keys are always checked",
          ),
        identityFile: dirPathOf('a key file path')
          .optional()
          .describe('SSH private key for the mirror (default: ssh chooses)'),
        afterBuild: z
          .boolean()
          .default(true)
          .describe('publish every successful build to `to` (when set) unless osbake build --no-publish'),
      })
      .strict()
      .prefault({}),
    signing: z
      .object({
        key: z
          .string()
          .regex(/^[0-9A-Fa-f]{40}$/, 'must be a key fingerprint: 40 hex digits (osbake keys list shows it)')
          .transform((k) => k.toUpperCase())
          .optional()
          .describe('fingerprint of the project signing key (made by osbake keys init); unset: no signing'),
        gnupgHome: dirPathOf('a directory path')
          .optional()
          .describe('GnuPG home holding its secret key (default: $GNUPGHOME, else ~/.gnupg)'),
        required: z
          .boolean()
          .default(false)
          .describe('an unsigned release is an error for release, verify and burn'),
      })
      .strict()
      .prefault({}),
    nodes: z
      .record(z.string(), NodeSchema)
      .default({})
      .describe(
        "the cluster's machines by name: MAC/serial, hostname, target, addresses, SSH keys, files (network and stick installs)",
      ),
    netboot: NetbootSchema.prefault({}).describe(
      'osbake serve --netboot: what unknown nodes get, the server URL, kernel arguments (netboot.nodes: the older spelling of nodes:)',
    ),
  })
  .strict()
  .superRefine((c, ctx) => {
    checkNodes(c.nodes, c.netboot, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
    const seen = new Set<string>();
    c.hypervisors.forEach((h, i) => {
      if (seen.has(h.name))
        ctx.addIssue({
          code: 'custom',
          path: ['hypervisors', i, 'name'],
          message: `duplicate name "${h.name}"`,
        });
      seen.add(h.name);
    });
  });

/** "90m" → milliseconds. */
export function durationToMs(d: string): number {
  const m = /^(\d+)([smh])$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

export type ProjectConfigInput = z.input<typeof ProjectConfigSchema>;
export type ProjectConfig = z.output<typeof ProjectConfigSchema>;

export interface Project {
  root: string;
  file: string;
  config: ProjectConfig;
  /** Absolute paths resolved against the project root. */
  storeDir: string;
  workDir: string;
  outDir: string;
}

/** Find osbake.yaml in dir or its parents. */
export function findProjectRoot(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, PROJECT_FILE))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new UserError(
        'E_NO_PROJECT',
        `no ${PROJECT_FILE} in ${resolve(start)} or any parent directory`,
        'run osbake inside an osbake project or pass --project DIR',
      );
    }
    dir = parent;
  }
}

export async function loadProject(start: string): Promise<Project> {
  const root = findProjectRoot(start);
  const file = join(root, PROJECT_FILE);
  const config = await loadYamlConfig(file, ProjectConfigSchema, root);
  // What this process creates from here on is recorded as the project's own (osbake clean).
  useLedger(ledgerOf(root));
  return {
    root,
    file,
    config,
    storeDir: resolve(root, config.store),
    workDir: resolve(root, config.workDir),
    outDir: resolve(root, config.outDir),
  };
}

/**
 * The project's directories can be made and written (made for the probe, then removed again): a user error naming the key
 * and path otherwise (EACCES, EROFS, a file in the way, /proc), before any work starts.
 */
export async function checkProjectDirs(
  project: Project,
  keys: readonly ('workDir' | 'outDir' | 'store')[] = ['workDir', 'outDir', 'store'],
): Promise<void> {
  const dirs = { workDir: project.workDir, outDir: project.outDir, store: project.storeDir };
  for (const key of keys) {
    const dir = dirs[key];
    // Builds running at once (build --all) probe the same directories: one may remove a directory it
    // made just as another writes its probe there (ENOENT), so that is tried again.
    for (let attempt = 1; ; attempt++) {
      let made: string[] = [];
      try {
        made = makeDirsSync(dir);
        const probe = join(dir, `.osbake-probe-${process.pid}-${randomUUID().slice(0, 8)}`);
        await writeFile(probe, '');
        await rm(probe, { force: true });
        // A refused build leaves nothing behind: what the probe made is removed again.
        for (const m of [...made].reverse()) await rmdir(m).catch(() => undefined);
        break;
      } catch (err) {
        for (const m of [...made].reverse()) await rmdir(m).catch(() => undefined);
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        if (code === 'ENOENT' && attempt < 5) continue;
        throw new UserError(
          'E_NOT_WRITABLE',
          `${key} ${dir} is not a writable directory (${code})`,
          `fix ${key} in ${project.file}, or the directory's permissions`,
        );
      }
    }
  }
}
