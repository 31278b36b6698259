/**
 * What `osbake serve --netboot` asks of netboot/: the served release's files (checked, cached)
 * before anything listens, then — once the port is known — the Secure Boot chain's TFTP root,
 * kept current while serving, and the banner lines.
 */
import cluster from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import { projectNodes } from '../config/nodes.js';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { identityBlock } from '../installer/node-identity.js';
import { commandLogFile, createFileLogger, createNullLogger } from '../log/logger.js';
import type { TextOut } from '../log/progress.js';
import { ByteProgress } from '../log/progress.js';
import { prepareNetboot } from './files.js';
import { type NetbootContext, nodesDirOf } from './netboot.js';
import { prepareTftpRoot, type TftpRoot, tftpDirOf, watchNodeRecords } from './tftp.js';

/**
 * --netboot [R]: the release's files out of its stick (checked, cached) before anything listens.
 * The master prepares them; each worker finds them cached. Ctrl-C while reading stops the tools.
 */
export async function netbootContext(
  netboot: string | boolean,
  project: Project | undefined,
): Promise<NetbootContext> {
  if (!project) {
    throw new UserError(
      'E_USAGE',
      '--netboot serves a release of the project: run it inside the project, without --root',
      'cd into the project (or -C DIR) and run osbake serve --netboot [R]',
    );
  }
  const ac = new AbortController();
  const untrap = trapSignals(ac, () => undefined);
  const quiet = cluster.isWorker;
  const logFile = commandLogFile('serve-netboot');
  try {
    const release = await prepareNetboot({
      project,
      release: typeof netboot === 'string' ? netboot : undefined,
      log: quiet ? createNullLogger() : createFileLogger(logFile),
      signal: ac.signal,
      progress: (t) => {
        if (!quiet) process.stderr.write(`netboot: ${t}\n`);
      },
      ...(quiet ? {} : { bytes: new ByteProgress() }),
    });
    const nodesDir = nodesDirOf(project);
    await mkdir(nodesDir, { recursive: true });
    const nodes = projectNodes(project.config);
    // The identities' files are read now too: a missing or oversized source stops serve here,
    // not at a node's install.
    for (const n of nodes) await identityBlock(n, project.root);
    return {
      release,
      config: project.config.netboot,
      nodes,
      root: project.root,
      nodesDir,
      tftpDir: tftpDirOf(project),
    };
  } finally {
    untrap();
  }
}

/** What the banner says of --netboot (pure). */
export function netbootBanner(nb: NetbootContext, url: string, host: string, tftp?: TftpRoot): string {
  const configured = nb.nodes.filter((n) => n.macs.length > 0).length;
  const lines = [
    `netboot: release ${nb.release.release} (${nb.release.build}, ${nb.release.ranges} ranges, ${nb.release.payloadBytes} bytes); ${nb.release.checked}`,
    `netboot: nodes boot ${url}/netboot/boot.ipxe (iPXE); ${configured} node(s) in osbake.yaml, unknown nodes: ${nb.config.unknown}; progress at ${url}/api/netboot`,
  ];
  if (tftp) {
    lines.push(
      tftp.secureBoot
        ? `netboot: UEFI with Secure Boot boots bootx64.efi (shim → grubnetx64) from the TFTP root ${tftp.dir}${tftp.ipxe.length ? `; BIOS: ${tftp.ipxe.join(', ')} there` : ''} (osbake netboot dnsmasq-config points dnsmasq at it)`
        : `netboot: no Secure Boot network chain: release ${nb.release.release}'s stick has no boot/netboot/ (rebuild it with this osbake); iPXE nodes boot as before`,
    );
  }
  if (/^(127\.|::1$|localhost$)/.test(host) && !nb.config.url) {
    lines.push(
      `netboot: warning: listening on ${host} only, which other machines cannot reach: use --host 0.0.0.0 (or this machine's address)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Once listening: the TFTP root for the served port (grub.cfg names it), a watcher that keeps its
 * grub.cfg current, and the banner. Returns the watcher's stop function.
 */
export async function announceNetboot(
  nb: NetbootContext,
  url: string,
  host: string,
  out: TextOut,
): Promise<() => void> {
  const port = Number(new URL(url).port || 80);
  const tftp = await prepareTftpRoot(nb, port);
  out.write(netbootBanner(nb, url, host, tftp));
  return watchNodeRecords(nb, port, (err) =>
    out.write(`netboot: warning: grub.cfg not updated: ${String(err)}\n`),
  );
}
