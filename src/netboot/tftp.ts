/**
 * The network install's Secure Boot chain: UEFI PXE → shim → Debian's signed grubnetx64 → the
 * installer's signed kernel. None of it can speak HTTP under Secure Boot (grubnetx64 has no http
 * module and may not load one), so it is a TFTP directory that osbake prepares and keeps current
 * for the site's TFTP server (dnsmasq's, which `osbake netboot dnsmasq-config` points at it):
 *   bootx64.efi                 shim, signed by Microsoft's UEFI CA (from the release's stick)
 *   grubx64.efi                 Debian's signed grubnetx64: prefix /grub, reads only grub/grub.cfg
 *   grub/grub.cfg               one file for every node, a branch per configured node on
 *                               $net_default_mac; rewritten whenever a node record changes
 *   <R>/vmlinuz, <R>/initrd.img the installer (kernel checked by shim's key through GRUB)
 *   undionly.kpxe, snponly.efi  Debian's iPXE for BIOS nodes (and UEFI without Secure Boot), when
 *                               the ipxe package is installed: one TFTP root serves every firmware
 * The installer then fetches the payload over HTTP from osbake serve, as after iPXE, and checks the
 * release's signature exactly as on the stick.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceAtomically, writeFileAtomically } from '../config/atomic.js';
import type { ClusterNode } from '../config/nodes.js';
import type { Project } from '../config/project.js';
import { RELEASE_NAME_RE } from '../config/releases.js';
import { checkDirectory, INPUT_CAPS, parseInputJson, readInputText } from '../fsx/input.js';
import { installerArgs, type NetbootContext, type NodeRecord, readNodes } from './netboot.js';

/** The files a TFTP root holds besides grub/ and the release's directory. */
export const SHIM = 'bootx64.efi';
export const NET_GRUB = 'grubx64.efi';
export const IPXE_DIR = '/usr/lib/ipxe';
export const IPXE_FILES = ['undionly.kpxe', 'snponly.efi'] as const;

/** Where a project's TFTP root lives: <project>/.osbake/netboot/tftp (beside the node records). */
export function tftpDirOf(project: Pick<Project, 'root'>): string {
  return join(project.root, '.osbake', 'netboot', 'tftp');
}

/** Text that GRUB's script reads as plain words (no $, quotes, braces, ;, tabs or newlines). */
const GRUB_WORD = /^[A-Za-z0-9_.,:=/+@ -]*$/;

function word(text: string, what: string): string {
  if (!GRUB_WORD.test(text)) throw new Error(`${what} ${JSON.stringify(text)} cannot go into grub.cfg`);
  return text;
}

/**
 * grub/grub.cfg (pure): install, refuse, or "exit to the next boot entry" once a node is done —
 * the same answers as the iPXE scripts. `base` is the HTTP server as the node sees it; without
 * netboot.url it is ${net_default_server} (the TFTP server, which is where osbake serve runs) and
 * the port osbake serve listens on.
 */
export function grubNetConfig(
  ctx: Pick<NetbootContext, 'release' | 'config' | 'nodes'>,
  records: NodeRecord[],
  port: number,
): string {
  const r = word(ctx.release.release, 'release');
  // Placeholders, checked as plain words, then replaced by GRUB's variables.
  const HOST = 'osbake-tftp-server';
  const MAC = 'osbake-node-mac';
  const base = ctx.config.url ?? `http://${HOST}:${port}`;
  const args = (mac: string, node: ClusterNode | undefined) =>
    word(installerArgs(base, r, mac, node, ctx.config), 'kernel arguments')
      .replaceAll(HOST, () => '${net_default_server}')
      .replaceAll(MAC, () => '${net_default_mac}');
  const byMac = new Map(records.map((x) => [x.mac, x]));
  const lines = [
    '# osbake serve --netboot: the Secure Boot chain (shim → grubnetx64) reads only this file;',
    '# osbake rewrites it whenever a node reports. Edit osbake.yaml netboot:, not this file.',
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'set timeout=0',
    `echo "osbake: network boot of $net_default_mac (Secure Boot chain), release ${r}"`,
  ];
  const install = (indent: string, kernelArgs: string, who: string) =>
    [
      `echo "osbake: installing ${r} (${word(ctx.release.build, 'build')}) on ${who}"`,
      `linux /${r}/vmlinuz ${kernelArgs}`,
      `initrd /${r}/initrd.img`,
      'boot',
    ].map((l) => indent + l);
  for (const node of ctx.nodes)
    for (const mac of node.macs) {
      const rec = byMac.get(mac);
      lines.push(`if [ "$net_default_mac" = "${mac}" ]; then`);
      if (rec?.state === 'done') {
        lines.push(
          `  echo "osbake: ${mac} installed ${word(rec.release ?? r, 'release')}; booting from its disk (osbake netboot reinstall ${mac} installs it again)"`,
          '  exit',
        );
      } else {
        const who = word(`${node.hostname ?? mac}${node.target ? ` on ${node.target}` : ''}`, 'node');
        lines.push(...install('  ', args(mac, node), who));
      }
      lines.push('fi');
    }
  if (ctx.config.unknown === 'refuse') {
    lines.push(
      'echo "osbake: $net_default_mac is not a node of this server (netboot.unknown: refuse in osbake.yaml)"',
      'sleep 5',
      'exit',
    );
  } else {
    lines.push(...install('', args(MAC, undefined), '$net_default_mac (unknown node: the menu)'));
  }
  return `${lines.join('\n')}\n`;
}

export interface TftpRoot {
  dir: string;
  /** shim and grubnetx64 are there (a stick made before osbake carried them has none). */
  secureBoot: boolean;
  /** Debian's iPXE binaries copied in (for BIOS nodes), if installed here. */
  ipxe: string[];
}

/**
 * Copy a file in whole (temp + rename). Always: size and time cannot tell another release's shim
 * or kernel from the one there (a copy is newer than its source); a node mid-download keeps the
 * old file, which the rename only unlinks.
 */
async function place(from: string, to: string): Promise<void> {
  await replaceAtomically(to, (tmp) => copyFile(from, tmp));
}

/**
 * Fill the TFTP root for the served release (before anything listens): the chain out of the
 * release's checked netboot files, the installer, Debian's iPXE when present, and grub.cfg.
 */
export async function prepareTftpRoot(nb: NetbootContext, port: number): Promise<TftpRoot> {
  const dir = nb.tftpDir;
  const src = nb.release.dir;
  // A file where the directory belongs is said plainly (a link to a directory is the user's choice).
  await checkDirectory(dir, 'the TFTP root');
  await checkDirectory(join(dir, 'grub'), "the TFTP root's grub directory");
  await mkdir(join(dir, 'grub'), { recursive: true });
  const secureBoot = existsSync(join(src, SHIM)) && existsSync(join(src, NET_GRUB));
  if (secureBoot) {
    await place(join(src, SHIM), join(dir, SHIM));
    await place(join(src, NET_GRUB), join(dir, NET_GRUB));
  }
  await mkdir(join(dir, nb.release.release), { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) await place(join(src, f), join(dir, nb.release.release, f));
  await pruneReleases(dir, nb.release.release);
  const ipxe: string[] = [];
  for (const f of IPXE_FILES) {
    if (!existsSync(join(IPXE_DIR, f))) continue;
    await place(join(IPXE_DIR, f), join(dir, f));
    ipxe.push(f);
  }
  await refreshGrubConfig(nb, port);
  return { dir, secureBoot, ipxe };
}

/** The record of the release directories osbake put into a TFTP root (the only ones it removes). */
const PLACED = '.osbake-releases.json';

/**
 * Remove the release directories osbake placed for releases served before (a kernel and an
 * initramfs each), as recorded in PLACED; record the current one. Anything else there stays.
 */
async function pruneReleases(dir: string, current: string): Promise<void> {
  const file = join(dir, PLACED);
  let placed: string[] = [];
  try {
    const data = parseInputJson(
      file,
      await readInputText(file, {
        what: 'the TFTP root record',
        maxBytes: INPUT_CAPS.record,
        noSymlink: true,
      }),
      'the TFTP root record',
    );
    if (Array.isArray(data)) placed = data.filter((x): x is string => typeof x === 'string');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const r of placed) {
    // Names as osbake writes them only (a record edited to say "../x" removes nothing).
    if (r === current || !RELEASE_NAME_RE.test(r)) continue;
    for (const f of ['vmlinuz', 'initrd.img']) await rm(join(dir, r, f), { force: true });
    await rmdir(join(dir, r)).catch(() => undefined);
  }
  await writeFileAtomically(file, `${JSON.stringify([current])}\n`);
}

/** What this process last wrote to each grub.cfg (never read back: whatever sits there is replaced). */
const written = new Map<string, string>();

/** Write grub/grub.cfg from the node records when it would change (always the first time). */
export async function refreshGrubConfig(nb: NetbootContext, port: number): Promise<boolean> {
  const file = join(nb.tftpDir, 'grub', 'grub.cfg');
  const text = grubNetConfig(nb, await readNodes(nb.nodesDir), port);
  if (written.get(file) === text) return false;
  await writeFileAtomically(file, text);
  written.set(file, text);
  return true;
}

/**
 * Keep grub.cfg current while serving: every node record is written by a rename into the nodes
 * directory (by any worker, or `osbake netboot reinstall`), which changes the directory's mtime;
 * looked at once a second. Returns the stop function.
 */
export function watchNodeRecords(
  nb: NetbootContext,
  port: number,
  onError: (err: unknown) => void,
): () => void {
  let seen = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    stat(nb.nodesDir)
      .then(async (st) => {
        if (st.mtimeMs === seen) return;
        seen = st.mtimeMs;
        await refreshGrubConfig(nb, port);
      })
      .catch(onError)
      .finally(() => {
        busy = false;
      });
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
