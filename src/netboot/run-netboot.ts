/**
 * The `osbake netboot` verbs: `nodes` (what each node reported to osbake serve --netboot),
 * `reinstall MAC…` (a node that is done installs again at its next network boot) and
 * `dnsmasq-config` (the proxy-DHCP configuration that points a site's nodes at the server).
 */
import { normalizeMac } from '../config/netboot.js';
import { projectNodes } from '../config/nodes.js';
import { loadProject } from '../config/project.js';
import { UserError } from '../errors.js';
import type { TextOut } from '../log/progress.js';
import { formatBytes, formatElapsed } from '../log/progress.js';
import { formatTable } from '../log/table.js';
import { checkDnsmasqOptions, type DnsmasqOptions, dnsmasqConfig } from './dnsmasq.js';
import { nodesDirOf, nodesView, readNodes, updateNode } from './netboot.js';
import { tftpDirOf } from './tftp.js';

async function projectAndRecords(projectDir: string) {
  const project = await loadProject(projectDir);
  return { project, dir: nodesDirOf(project) };
}

export async function runNetbootStatus(o: {
  projectDir: string;
  json?: boolean;
  out?: TextOut;
}): Promise<void> {
  const out = o.out ?? process.stdout;
  const { project, dir } = await projectAndRecords(o.projectDir);
  const view = { nodes: nodesView(projectNodes(project.config), await readNodes(dir)) };
  if (o.json) {
    out.write(`${JSON.stringify(view.nodes, null, 2)}\n`);
    return;
  }
  if (view.nodes.length === 0) {
    out.write('no node has booted from osbake serve --netboot, and none is in osbake.yaml nodes:\n');
    return;
  }
  const rows = view.nodes.map((n) => [
    n.mac,
    n.hostname ?? n.name ?? (n.configured ? '-' : '(unknown)'),
    n.addresses?.join(',') ?? (n.configured ? 'dhcp' : '-'),
    `${n.state}${n.state === 'writing' && n.percent !== undefined ? ` ${n.percent}%` : ''}`,
    n.release ?? '-',
    n.bytes === undefined ? '-' : formatBytes(n.bytes),
    n.seconds === undefined ? '-' : formatElapsed(n.seconds * 1000),
    n.updated ? n.updated.slice(0, 19).replace('T', ' ') : '-',
    (n.message ?? n.log?.trimEnd().split('\n').at(-1) ?? '').slice(0, 100),
  ]);
  out.write(
    formatTable(
      ['MAC', 'HOSTNAME', 'ADDRESSES', 'STATE', 'RELEASE', 'BYTES', 'TIME', 'UPDATED (UTC)', 'MESSAGE'],
      rows,
    ),
  );
}

export async function runNetbootReinstall(o: {
  projectDir: string;
  macs: string[];
  out?: TextOut;
}): Promise<void> {
  const out = o.out ?? process.stdout;
  if (o.macs.length === 0) {
    throw new UserError(
      'E_USAGE',
      'netboot reinstall needs at least one MAC address',
      'osbake netboot status lists them',
    );
  }
  const macs = o.macs.map((m) => {
    const mac = normalizeMac(m);
    if (!mac)
      throw new UserError(
        'E_USAGE',
        `${JSON.stringify(m)} is not a MAC address`,
        'write it like 52:54:00:12:34:56',
      );
    return mac;
  });
  const { dir } = await projectAndRecords(o.projectDir);
  for (const mac of macs) {
    await updateNode(dir, mac, {
      state: 'reinstall',
      message: 'reinstall requested (osbake netboot reinstall)',
    });
    out.write(`${mac}: installs again at its next network boot\n`);
  }
}

export async function runDnsmasqConfig(
  o: Omit<DnsmasqOptions, 'tftpRoot' | 'uefi'> & {
    projectDir: string;
    tftpRoot?: string;
    uefi: string;
    out?: TextOut;
  },
): Promise<void> {
  const uefi = (['shim', 'ipxe'] as const).find((u) => u === o.uefi);
  if (!uefi) {
    throw new UserError(
      'E_USAGE',
      `--uefi ${JSON.stringify(o.uefi)} is not a loader`,
      'give --uefi shim or --uefi ipxe',
    );
  }
  // Checked before the project is read: a bad option is said first.
  const opts = {
    server: o.server,
    subnet: o.subnet,
    ...(o.iface ? { iface: o.iface } : {}),
    ...(o.dhcpRange ? { dhcpRange: o.dhcpRange } : {}),
    uefi,
  };
  checkDnsmasqOptions({ ...opts, tftpRoot: o.tftpRoot ?? '/' });
  const tftpRoot =
    o.tftpRoot ??
    tftpDirOf(
      await loadProject(o.projectDir).catch((err: unknown) => {
        if ((err as { code?: string }).code !== 'E_NO_PROJECT') throw err;
        throw new UserError(
          'E_NO_PROJECT',
          `no osbake.yaml in ${o.projectDir}: the TFTP root is a project's (.osbake/netboot/tftp)`,
          'run it in the project that serves --netboot, or give --tftp-root DIR',
        );
      }),
    );
  (o.out ?? process.stdout).write(dnsmasqConfig({ ...opts, tftpRoot }));
}
