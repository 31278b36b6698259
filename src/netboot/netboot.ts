/**
 * `osbake serve --netboot`: what a node that boots from the network is told, and what it reports.
 * GET /netboot/boot.ipxe chains to the node's own script (?mac=${netX/mac}); that script boots the
 * installer's kernel with the node's settings on its command line, or refuses an unknown node, or
 * sends a node that already reported "done" to its disk. The installer POSTs its progress to
 * /netboot/report; each node's record is one JSON file (written whole, temp + rename) under
 * <project>/.osbake/netboot/nodes/, so every worker process and a restarted server answer the same.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../config/atomic.js';
import { type NetbootConfig, normalizeMac } from '../config/netboot.js';
import { type ClusterNode, nodeByMac } from '../config/nodes.js';
import type { Project } from '../config/project.js';
import { UserError } from '../errors.js';
import { checkDirectory, INPUT_CAPS, parseInputJson, readInputText } from '../fsx/input.js';
import type { NetbootRelease } from './files.js';

export interface NetbootContext {
  release: NetbootRelease;
  config: NetbootConfig;
  /** The project's nodes (nodes: and netboot.nodes, merged). */
  nodes: readonly ClusterNode[];
  /** The project's root: node files' sources are read from it. */
  root: string;
  /** nodesDirOf(project) */
  nodesDir: string;
  /** tftpDirOf(project): the Secure Boot chain's TFTP root. */
  tftpDir: string;
}

/**
 * Where a project's node records live: <project>/.osbake/netboot/nodes — the project's own state,
 * not under workDir, which may be a cache shared by several projects (as the tests share it).
 */
export function nodesDirOf(project: Pick<Project, 'root'>): string {
  return join(project.root, '.osbake', 'netboot', 'nodes');
}

/** States the installer reports, in order; "refused" is the server's own. */
export const NODE_STATES = ['booted', 'writing', 'verifying', 'verified', 'done', 'failed'] as const;
export type NodeState = (typeof NODE_STATES)[number] | 'refused' | 'waiting' | 'reinstall';

export interface NodeRecord {
  mac: string;
  state: NodeState;
  percent?: number;
  message?: string;
  /** The last log lines of a failed (or done) install. */
  log?: string;
  release?: string;
  address?: string;
  /** Payload bytes the installer fetched (its own count, with every retry). */
  bytes?: number;
  updated: string;
  /** Every state change with its time (the last 50). */
  events: { state: NodeState; at: string; percent?: number }[];
}

const HOST_RE = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/;

/** The server's base URL as the node sees it: netboot.url, else the request's Host (checked). */
export function baseUrl(cfg: NetbootConfig, host: string | undefined): string | undefined {
  if (cfg.url) return cfg.url;
  if (!host || !HOST_RE.test(host)) return undefined;
  return `http://${host}`;
}

/** The first script every node gets: it asks for its own by MAC address (pure). */
export function chainScript(base: string): string {
  return [
    '#!ipxe',
    '# osbake serve --netboot: each node asks for its own script by its MAC address',
    `chain ${base}/netboot/boot.ipxe?mac=\${netX/mac} || goto failed`,
    ':failed',
    `echo osbake: could not load this node's script from ${base}`,
    'exit 1',
    '',
  ].join('\n');
}

/** The kernel command line of a node's installer (pure). */
export function installerArgs(
  base: string,
  release: string,
  mac: string,
  node: ClusterNode | undefined,
  cfg: NetbootConfig,
): string {
  return [
    'console=ttyS0,115200n8',
    'console=tty0',
    'panic=30',
    `osbake.net=${base}/netboot/${release}`,
    `osbake.report=${base}/netboot/report`,
    `osbake.mac=${mac}`,
    ...(node?.target ? [`osbake.target=${node.target}`] : []),
    ...(node?.hostname ? [`osbake.hostname=${node.hostname}`] : []),
    `osbake.then=${node?.then ?? 'poweroff'}`,
    // Unattended: an error powers the node off (reported first); the menu gets a shell.
    ...(node?.target ? ['osbake.onerror=poweroff'] : []),
    cfg.kernelArgs,
  ]
    .filter(Boolean)
    .join(' ');
}

export type NodeScript = { kind: 'install' | 'refuse' | 'disk'; script: string };

/** A node's own script (pure): install, refused, or "boot from disk" once it reported done. */
export function nodeScript(
  base: string,
  ctx: Pick<NetbootContext, 'release' | 'config' | 'nodes'>,
  mac: string,
  record: NodeRecord | undefined,
): NodeScript {
  const node = nodeByMac(ctx.nodes, mac);
  const r = ctx.release.release;
  if (!node && ctx.config.unknown === 'refuse') {
    return {
      kind: 'refuse',
      script: `#!ipxe\necho osbake: ${mac} is not a node of this server (netboot.unknown: refuse in osbake.yaml)\nexit 1\n`,
    };
  }
  if (record?.state === 'done') {
    return {
      kind: 'disk',
      script: `#!ipxe\necho osbake: ${mac} installed ${record.release ?? r} at ${record.updated}; booting from its disk (osbake netboot reinstall ${mac} installs it again)\nexit 0\n`,
    };
  }
  const who = node
    ? `${node.hostname ?? mac}${node.target ? ` on ${node.target}` : ''}`
    : `${mac} (unknown node: the menu)`;
  return {
    kind: 'install',
    script: [
      '#!ipxe',
      `echo osbake: installing ${r} (${ctx.release.build}) on ${who}`,
      // The EFI stub loads the initrd by its name; iPXE names it after the URL's last segment.
      `kernel ${base}/netboot/${r}/vmlinuz initrd=initrd.img ${installerArgs(base, r, mac, node, ctx.config)}`,
      `initrd ${base}/netboot/${r}/initrd.img`,
      'boot',
      '',
    ].join('\n'),
  };
}

export interface Report {
  mac: string;
  state: (typeof NODE_STATES)[number];
  percent?: number;
  bytes?: number;
  message?: string;
  log?: string;
}

/** A report's form fields → Report, or the reason it is refused (pure). */
export function parseReport(body: string): Report | string {
  const f = new URLSearchParams(body);
  const mac = normalizeMac(f.get('mac') ?? '');
  if (!mac) return 'mac: not a MAC address';
  const state = NODE_STATES.find((s) => s === f.get('state'));
  if (!state) return `state: one of ${NODE_STATES.join(', ')}`;
  const p = f.get('percent');
  if (p !== null && p !== '' && !/^(100|[1-9]?\d)$/.test(p)) return 'percent: a whole number from 0 to 100';
  const b = f.get('bytes');
  if (b !== null && b !== '' && !/^(0|[1-9]\d{0,14})$/.test(b)) return 'bytes: a whole number of bytes';
  const clip = (s: string | null, n: number) => (s === null ? undefined : s.replace(/\r/g, '').slice(-n));
  return {
    mac,
    state,
    ...(p ? { percent: Number(p) } : {}),
    ...(b ? { bytes: Number(b) } : {}),
    ...(f.get('message') !== null ? { message: clip(f.get('message'), 500) } : {}),
    ...(f.get('log') !== null ? { log: clip(f.get('log'), 16_000) } : {}),
  };
}

/** Records kept for nodes not in netboot.nodes (a LAN full of strangers must not fill the disk). */
export const MAX_UNKNOWN_RECORDS = 4096;

/** May a record be made for this MAC? Configured nodes always; others while there are few records. */
export async function mayRecord(dir: string, nodes: readonly ClusterNode[], mac: string): Promise<boolean> {
  if (nodeByMac(nodes, mac)) return true;
  if (await readNode(dir, mac)) return true;
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.json')).length < MAX_UNKNOWN_RECORDS + nodes.length;
}

function recordFile(dir: string, mac: string): string {
  return join(dir, `${mac.replaceAll(':', '-')}.json`);
}

/** A node's record, or undefined when it has none; a damaged or foreign record is a user error naming it. */
export async function readNode(dir: string, mac: string): Promise<NodeRecord | undefined> {
  const file = recordFile(dir, mac);
  let text: string;
  try {
    text = await readInputText(file, { what: 'node record', maxBytes: INPUT_CAPS.record, noSymlink: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const data = parseInputJson(file, text, 'node record') as Partial<NodeRecord> | null;
  if (
    typeof data !== 'object' ||
    data === null ||
    typeof data.mac !== 'string' ||
    typeof data.state !== 'string'
  ) {
    throw new UserError(
      'E_INPUT',
      `node record ${file}: not a node record (no mac or state)`,
      'remove it; the node reports again at its next boot',
    );
  }
  return data as NodeRecord;
}

export async function readNodes(dir: string): Promise<NodeRecord[]> {
  if (!(await checkDirectory(dir, 'the node records'))) return [];
  const names = await readdir(dir);
  const out: NodeRecord[] = [];
  for (const n of names.filter((x) => x.endsWith('.json') && !x.startsWith('.'))) {
    const mac = normalizeMac(n.slice(0, -5));
    const r = mac ? await readNode(dir, mac) : undefined;
    if (r) out.push(r);
  }
  return out.sort((a, b) => a.mac.localeCompare(b.mac));
}

/** Record a new state for a node (the record is replaced whole). */
export async function updateNode(
  dir: string,
  mac: string,
  change: Pick<NodeRecord, 'state'> &
    Partial<Pick<NodeRecord, 'percent' | 'message' | 'log' | 'release' | 'address' | 'bytes'>>,
  now = new Date(),
): Promise<NodeRecord> {
  const old = await readNode(dir, mac);
  const at = now.toISOString();
  const last = old?.events.at(-1);
  const events = [...(old?.events ?? [])];
  // "writing 35 %" replaces "writing 30 %": one event per state, with its first time.
  if (last?.state === change.state) events[events.length - 1] = { ...last, percent: change.percent };
  else
    events.push({
      state: change.state,
      at,
      ...(change.percent !== undefined ? { percent: change.percent } : {}),
    });
  const fresh = change.state === 'booted' || change.state === 'refused' || change.state === 'reinstall';
  const record: NodeRecord = {
    mac,
    state: change.state,
    ...(change.percent !== undefined ? { percent: change.percent } : {}),
    ...(change.message !== undefined
      ? { message: change.message }
      : fresh
        ? {}
        : old?.message
          ? { message: old.message }
          : {}),
    ...(change.log !== undefined ? { log: change.log } : {}),
    ...((change.release ?? old?.release) ? { release: change.release ?? old?.release } : {}),
    ...((change.address ?? old?.address) ? { address: change.address ?? old?.address } : {}),
    ...(change.bytes !== undefined
      ? { bytes: change.bytes }
      : !fresh && old?.bytes !== undefined
        ? { bytes: old.bytes }
        : {}),
    updated: at,
    events: events.slice(-50),
  };
  await writeFileAtomically(recordFile(dir, mac), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

export interface NetbootView {
  release: string;
  build: string;
  unknown: NetbootConfig['unknown'];
  files: string[];
  nodes: NodeView[];
}

export type NodeView = NodeRecord & {
  /** The node's name in osbake.yaml nodes: (configured nodes). */
  name?: string;
  hostname?: string;
  /** Its static addresses (nodes.NAME.network.addresses). */
  addresses?: string[];
  target?: string;
  then?: string;
  configured: boolean;
  /** Seconds from this install's "booted" to its end (done/failed), or to now while it runs. */
  seconds?: number;
};

const ENDED: readonly NodeState[] = ['done', 'failed', 'refused'];

/** How long the record's latest install took, or has taken so far (pure). */
export function installSeconds(
  r: Pick<NodeRecord, 'events' | 'state'>,
  now = Date.now(),
): number | undefined {
  const start = [...r.events].reverse().find((e) => e.state === 'booted');
  if (!start) return undefined;
  const end = ENDED.includes(r.state) ? r.events.at(-1)?.at : undefined;
  const t = (end ? Date.parse(end) : now) - Date.parse(start.at);
  return Number.isFinite(t) && t >= 0 ? Math.round(t / 1000) : undefined;
}

/** Configured nodes (waiting until they boot), then the others, by MAC (pure). */
export function nodesView(
  configured: readonly ClusterNode[],
  records: NodeRecord[],
  now = Date.now(),
): NodeView[] {
  const byMac = new Map(records.map((r) => [r.mac, r]));
  const nodes: NodeView[] = [];
  for (const n of configured) {
    const mac = n.macs[0];
    // A node without a MAC (found by its serial on the stick) never boots from the network.
    if (!mac) continue;
    // Its record: that of whichever of its NICs booted last.
    const mine = n.macs
      .map((m) => byMac.get(m))
      .filter((x): x is NodeRecord => x !== undefined)
      .sort((a, b) => b.updated.localeCompare(a.updated));
    for (const m of n.macs) byMac.delete(m);
    const r = mine[0] ?? { mac, state: 'waiting' as const, updated: '', events: [] };
    nodes.push({
      ...r,
      name: n.name,
      ...(n.hostname ? { hostname: n.hostname } : {}),
      ...(n.network?.addresses.length ? { addresses: n.network.addresses } : {}),
      ...(n.target ? { target: n.target } : {}),
      then: n.then,
      configured: true,
      seconds: installSeconds(r, now),
    });
  }
  for (const r of byMac.values()) nodes.push({ ...r, configured: false, seconds: installSeconds(r, now) });
  return nodes;
}

/** /api/netboot and the page's section (pure). */
export function netbootView(
  ctx: Pick<NetbootContext, 'release' | 'config' | 'nodes'>,
  records: NodeRecord[],
): NetbootView {
  return {
    release: ctx.release.release,
    build: ctx.release.build,
    unknown: ctx.config.unknown,
    files: ctx.release.files.map((f) => `/netboot/${ctx.release.release}/${f}`),
    nodes: nodesView(ctx.nodes, records),
  };
}
