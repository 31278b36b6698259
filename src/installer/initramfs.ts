/**
 * The installer's initramfs, assembled from a bootstrapped Debian root: busybox, the few tools the
 * installer needs (with the libraries `ldd` names), the kernel modules that find disks (with their
 * dependencies from modules.dep), the /init script, packed with cpio (newc) and zstd.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import { INPUT_CAPS, readInputText } from '../fsx/input.js';
import type { Logger } from '../log/logger.js';

/** Modules every installer loads: virtio, SATA/AHCI, NVMe, SCSI disks, USB storage and keyboards, ext4. */
export const BASE_MODULES = [
  'virtio_pci',
  'virtio_blk',
  'virtio_scsi',
  'ahci',
  'ata_piix',
  'nvme',
  'sd_mod',
  'usb_storage',
  'uas',
  'xhci_pci',
  'ehci_pci',
  'ohci_pci',
  'uhci_hcd',
  'usbhid',
  'hid_generic',
  'ext4',
  'crc32c_generic',
];

/**
 * Network drivers for the network install (osbake serve --netboot): virtio and the common server
 * NICs (Intel, Broadcom, Mellanox, Realtek, VMware). Loaded by every installer; cheap when absent.
 */
export const NET_MODULES = [
  'virtio_net',
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'i40e',
  'ice',
  'bnxt_en',
  'tg3',
  'bnx2',
  'mlx4_en',
  'mlx5_core',
  'r8169',
  'vmxnet3',
];

/** Binaries copied from the root (busybox provides everything else; curl: range requests). */
export const INSTALLER_TOOLS = [
  '/bin/busybox',
  '/usr/bin/zstd',
  '/usr/sbin/sfdisk',
  '/usr/bin/partx',
  '/usr/sbin/e2fsck',
  '/usr/sbin/resize2fs',
  '/usr/bin/gpgv',
  '/usr/bin/curl',
];

/** kernel module name as modprobe compares them: "usb-storage" == "usb_storage". */
export function normalizeModuleName(name: string): string {
  return name.replaceAll('-', '_');
}

function moduleNameOf(path: string): string {
  return normalizeModuleName(posix.basename(path).replace(/\.ko(\.[a-z]+)?$/, ''));
}

/** modules.dep → module name → { path, deps (paths) } (pure). */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const map = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const path = line.slice(0, i).trim();
    const deps = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    map.set(moduleNameOf(path), { path, deps });
  }
  return map;
}

/**
 * The module files the wanted modules need (themselves and every dependency). Names the kernel
 * has built in (modules.builtin) are skipped; unknown names are returned in `missing` (pure).
 */
export function moduleClosure(
  dep: Map<string, { path: string; deps: string[] }>,
  builtin: ReadonlySet<string>,
  wanted: readonly string[],
): { paths: string[]; missing: string[] } {
  const byPath = new Map([...dep.values()].map((m) => [m.path, m]));
  const paths = new Set<string>();
  const missing: string[] = [];
  const visit = (path: string) => {
    if (paths.has(path)) return;
    paths.add(path);
    for (const d of byPath.get(path)?.deps ?? []) visit(d);
  };
  for (const w of wanted) {
    const name = normalizeModuleName(w);
    const m = dep.get(name);
    if (m) visit(m.path);
    else if (!builtin.has(name)) missing.push(w);
  }
  return { paths: [...paths].sort(), missing };
}

/** modules.builtin → set of normalized names (pure). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => moduleNameOf(l.trim())),
  );
}

/** The modules.dep lines for the chosen files only (pure). */
export function filterModulesDep(text: string, keep: ReadonlySet<string>): string {
  return text
    .split('\n')
    .filter((l) => {
      const i = l.indexOf(':');
      return i > 0 && keep.has(l.slice(0, i).trim());
    })
    .map((l) => `${l}\n`)
    .join('');
}

/** Library paths from `ldd` output: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" and the loader (pure). */
export function parseLdd(text: string): string[] {
  const libs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const arrow = /=>\s+(\/\S+)\s+\(0x/.exec(line);
    const direct = /^(\/\S+)\s+\(0x/.exec(line);
    const path = arrow?.[1] ?? direct?.[1];
    if (path) libs.push(path);
  }
  return [...new Set(libs)];
}

/** Resolve `path` inside `root`, following symlinks (absolute ones relative to root, not the host). */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  let current = posix.normalize(path);
  for (let hops = 0; hops < 40; hops++) {
    const parts = current.split('/').filter(Boolean);
    let resolved = '/';
    let changed = false;
    for (let i = 0; i < parts.length; i++) {
      const candidate = posix.join(resolved, parts[i] as string);
      const st = await lstat(join(root, candidate));
      if (st.isSymbolicLink()) {
        const target = await readlink(join(root, candidate));
        const base = target.startsWith('/') ? target : posix.join(resolved, target);
        current = posix.normalize(posix.join(base, ...parts.slice(i + 1)));
        changed = true;
        break;
      }
      resolved = candidate;
    }
    if (!changed) return resolved;
  }
  throw new Error(`too many symbolic links resolving ${path} in ${root}`);
}

export interface InitramfsInputs {
  /** Bootstrapped Debian root (kernel, busybox-static, tools). */
  root: string;
  kernelVersion: string;
  modules: string[];
  staging: string;
  out: string;
  log: Logger;
  signal: AbortSignal;
}

async function copyIntoStaging(root: string, staging: string, path: string): Promise<void> {
  const real = await resolveInRoot(root, path);
  const dest = join(staging, path);
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(join(root, real), dest);
  await chmod(dest, (await lstat(join(root, real))).mode & 0o777);
}

/** Build the initramfs at `out` (cpio newc, zstd); returns the module files it holds. */
export async function assembleInitramfs(a: InitramfsInputs): Promise<{ modules: string[] }> {
  const { root, staging, log, signal } = a;
  await rm(staging, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'mnt/usb', 'mnt/target', 'tmp', 'etc', 'lib64', 'run']) {
    await mkdir(join(staging, d), { recursive: true });
  }
  // Tools and their libraries, as ldd inside the root reports them.
  const libs = new Set<string>();
  for (const tool of INSTALLER_TOOLS) {
    await copyIntoStaging(root, staging, tool);
    if (tool === '/bin/busybox') continue;
    const out = await capture(['chroot', root, 'ldd', tool], { log, signal });
    for (const l of parseLdd(out)) libs.add(l);
  }
  for (const l of libs) await copyIntoStaging(root, staging, l);
  // Everything else is busybox: one symlink per applet, in /bin.
  const applets = (await capture([join(root, 'bin/busybox'), '--list'], { log, signal }))
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[\w.[-]+$/.test(s) && s !== 'busybox');
  for (const applet of applets) {
    await symlink('busybox', join(staging, 'bin', applet)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  for (const tool of INSTALLER_TOOLS) {
    const name = posix.basename(tool);
    if (tool.startsWith('/bin/')) continue;
    await symlink(`..${tool}`, join(staging, 'bin', name)).catch(() => undefined);
  }
  await symlink('bin', join(staging, 'sbin'));
  // Kernel modules and a modules.dep naming only them.
  const modDir = `/lib/modules/${a.kernelVersion}`;
  const depText = await readFile(join(root, modDir, 'modules.dep'), 'utf8');
  const builtinText = await readFile(join(root, modDir, 'modules.builtin'), 'utf8').catch(() => '');
  const closure = moduleClosure(parseModulesDep(depText), parseModulesBuiltin(builtinText), a.modules);
  if (closure.missing.length > 0) {
    throw new Error(`kernel ${a.kernelVersion} has no module ${closure.missing.join(', ')}`);
  }
  for (const p of closure.paths) await copyIntoStaging(root, staging, posix.join(modDir, p));
  await writeFile(join(staging, modDir, 'modules.dep'), filterModulesDep(depText, new Set(closure.paths)));
  await writeFile(join(staging, 'etc/osbake-modules'), `${a.modules.map(normalizeModuleName).join('\n')}\n`);
  // The kernel opens /dev/console for /init before devtmpfs is mounted.
  await run(['mknod', '-m', '600', join(staging, 'dev/console'), 'c', '5', '1'], { log, signal });
  await packCpio(staging, a.out, log, signal);
  return { modules: closure.paths };
}

/** cpio (newc, owned by root) of everything under `dir`, zstd-compressed. */
async function packCpio(dir: string, out: string, log: Logger, signal: AbortSignal): Promise<void> {
  const files = (await capture(['find', '.', '-mindepth', '1'], { log, signal, cwd: dir }))
    .split('\n')
    .filter(Boolean)
    .sort();
  const cpio = `${out}.cpio`;
  await run(['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0', '-O', cpio], {
    log,
    signal,
    cwd: dir,
    input: `${files.join('\n')}\n`,
  });
  await run(['zstd', '-q', '-f', '-19', '-T0', '--rm', cpio, '-o', out], { log, signal });
}

/**
 * The installer's initrd: the cached base archive followed by a small one holding /init. The
 * kernel unpacks concatenated archives in order, so changing the installer script does not
 * rebuild the cached base.
 */
export async function initrdWithInit(o: {
  base: string;
  init: string;
  /** The keyring the installer checks the stick's SHA256SUMS.asc with (/etc/osbake/trusted.gpg). */
  trustedKeyring?: Buffer;
  /** Shell libraries /init sources, by name (/lib/osbake/NAME): identity.sh. */
  libs?: Record<string, string>;
  work: string;
  out: string;
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const dir = join(o.work, 'init-archive');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'init'), o.init, { mode: 0o755 });
  await chmod(join(dir, 'init'), 0o755);
  for (const [name, text] of Object.entries(o.libs ?? {})) {
    await mkdir(join(dir, 'lib/osbake'), { recursive: true });
    await writeFile(join(dir, 'lib/osbake', name), text, { mode: 0o644 });
  }
  if (o.trustedKeyring) {
    await mkdir(join(dir, 'etc/osbake'), { recursive: true });
    await writeFile(join(dir, 'etc/osbake/trusted.gpg'), o.trustedKeyring, { mode: 0o644 });
  }
  const initArchive = join(o.work, 'init.cpio.zst');
  await packCpio(dir, initArchive, o.log, o.signal);
  await writeFile(o.out, Buffer.concat([await readFile(o.base), await readFile(initArchive)]));
  await rm(dir, { recursive: true, force: true });
}

/** Shell libraries an installer's /init sources (/lib/osbake/NAME), read from the image's installer/. */
export const INSTALLER_LIBS = ['identity.sh'] as const;

/**
 * The libraries `init` sources, read beside it (through the input module). One that init names
 * but the image definition lacks is refused here: a busybox PID 1 that sources a missing file exits
 * and the kernel panics on the node.
 */
export async function installerLibs(imageDir: string, init: string): Promise<Record<string, string>> {
  const libs: Record<string, string> = {};
  for (const name of INSTALLER_LIBS) {
    if (!init.includes(`/lib/osbake/${name}`)) continue;
    const file = join(imageDir, 'installer', name);
    if (!existsSync(file)) {
      throw new UserError(
        'E_IMAGE',
        `${join(imageDir, 'installer', 'init')} sources /lib/osbake/${name}, but ${file} does not exist`,
        "copy it from osbake's images/usb-installer/installer/",
      );
    }
    libs[name] = await readInputText(file, {
      what: 'installer library',
      maxBytes: INPUT_CAPS.config,
      within: imageDir,
    });
  }
  return libs;
}
