/**
 * osbake.yaml `nodes:` — the cluster's machines and what each one is once installed, for network
 * and stick installs alike: found by MAC (network; the stick too, by any of its NICs), by DMI
 * system serial (the stick) or chosen in the stick's menu; hostname, target disk, what to do
 * afterwards, addresses (DHCP, or static IPv4/IPv6 with prefix, gateway, DNS), SSH authorized_keys
 * per user, and extra files. The installer writes them into the installed root in the distro's own
 * network configuration (systemd-networkd on the Debian image, NetworkManager on the Rocky one).
 * `netboot.nodes` (by MAC: hostname, target, then) is the older spelling of the same thing and is
 * merged in; every check here runs in `osbake validate` and before `serve --netboot` or a stick build.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { HOSTNAME_RE, NETBOOT_THEN, type NetbootConfig, normalizeMac, TARGET_RE } from './netboot.js';

/** "10.0.2.21/24" → parts, or undefined (pure). */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const m = /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const address = m[1] as string;
  const prefix = Number(m[2]);
  if (isIPv4(address)) return prefix >= 1 && prefix <= 32 ? { address, prefix, family: 4 } : undefined;
  if (isIPv6(address)) return prefix >= 1 && prefix <= 128 ? { address, prefix, family: 6 } : undefined;
  return undefined;
}

/** One spelling per address: IPv6 as the URL standard writes it ("fd00:0::21" → "fd00::21") (pure). */
export function canonicalIp(address: string): string {
  if (!isIPv6(address)) return address;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** "10.0.2.21" → its 32-bit number (pure; a checked IPv4 address). */
export function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Is `address` inside `cidr`'s subnet? (pure) */
export function inSubnet(cidr: { address: string; prefix: number; family: 4 | 6 }, address: string): boolean {
  const list = new BlockList();
  const family = cidr.family === 4 ? 'ipv4' : 'ipv6';
  if ((cidr.family === 4 ? isIPv4 : isIPv6)(address) === false) return false;
  if (cidr.family === 4) {
    const mask = cidr.prefix === 0 ? 0 : (~0 << (32 - cidr.prefix)) >>> 0;
    const net = (ipv4ToInt(cidr.address) & mask) >>> 0;
    list.addSubnet(
      [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.'),
      cidr.prefix,
      family,
    );
  } else {
    list.addSubnet(cidr.address, cidr.prefix, family);
  }
  return list.check(address, family);
}

/** Why an IPv4 host address cannot be that of a host in its subnet, or undefined (pure). */
export function ipv4HostProblem(cidr: { address: string; prefix: number }): string | undefined {
  const first = Number(cidr.address.split('.')[0]);
  if (first === 0 || first === 127 || first >= 224)
    return 'is not a host address (0/8, loopback, multicast or reserved)';
  if (cidr.prefix >= 31) return undefined; // /31 point-to-point and /32 have no network or broadcast address
  const mask = (~0 << (32 - cidr.prefix)) >>> 0;
  const a = ipv4ToInt(cidr.address);
  if ((a & ~mask) >>> 0 === 0) return `is the network address of its /${cidr.prefix}`;
  if ((a & ~mask) >>> 0 === ~mask >>> 0) return `is the broadcast address of its /${cidr.prefix}`;
  return undefined;
}

/** A user name the installed system can have (Debian's and Red Hat's useradd rules, no "$"). */
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Key types sshd accepts in authorized_keys. */
const KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];

/**
 * Why a line is not an OpenSSH public key, or undefined (pure): "TYPE BASE64 [comment]" whose
 * blob decodes and names the same type (a truncated or pasted-wrong key is refused, not installed).
 */
export function publicKeyProblem(line: string): string | undefined {
  if (/[\r\n\0]/.test(line)) return 'must be one line';
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: ([\x20-\x7e]*))?$/.exec(line);
  if (!m) return 'must be "TYPE BASE64 [comment]" as in a .pub file (no options)';
  const type = m[1] as string;
  if (!KEY_TYPES.includes(type))
    return `key type ${type} is not one sshd accepts (${KEY_TYPES.slice(0, 3).join(', ')}, …)`;
  const blob = Buffer.from(m[2] as string, 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len < 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== type) {
    return `its base64 is not a ${type} key (truncated or damaged?)`;
  }
  // The blob is length-prefixed fields end to end (RFC 4253 6.6): a cut-off key leaves a field short.
  const fields: Buffer[] = [];
  for (let at = 0; at < blob.length; ) {
    if (at + 4 > blob.length) return 'its key is truncated';
    const n = blob.readUInt32BE(at);
    if (at + 4 + n > blob.length) return 'its key is truncated';
    fields.push(blob.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (fields.length < 2 || (type === 'ssh-ed25519' && fields[1]?.length !== 32))
    return 'its key is truncated';
  return undefined;
}

/** A path in the installed system osbake may write: absolute, plain names, not in a virtual or volatile tree. */
const FILE_PATH_RE = /^(\/[A-Za-z0-9._@+-]+)+$/;
const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/run', '/tmp', '/boot/efi'];
export const NODE_FILE_MAX_BYTES = 256 * 1024;
export const NODE_FILES_MAX_BYTES = 1024 * 1024;

export function filePathProblem(path: string): string | undefined {
  if (!FILE_PATH_RE.test(path)) return 'must be an absolute path of plain names (letters, digits, . _ @ + -)';
  if (path.split('/').some((p) => p === '.' || p === '..')) return 'must not contain . or .. components';
  const tree = FORBIDDEN_TREES.find((t) => path === t || path.startsWith(`${t}/`));
  if (tree) return `is under ${tree}, which is not part of the installed root file system`;
  return undefined;
}

const ip = (what: string) =>
  z.string().refine((a) => isIPv4(a) || isIPv6(a), `must be an IPv4 or IPv6 address (${what})`);

export const NodeNetworkSchema = z
  .object({
    interface: z
      .string()
      .optional()
      .describe("the NIC to configure, by MAC (default: the node's first mac; a stick node: its first NIC)"),
    dhcp: z
      .boolean()
      .optional()
      .describe('DHCP (IPv4) on that NIC; the default when no IPv4 address is given'),
    addresses: z
      .array(z.string())
      .default([])
      .describe('static addresses with their prefix: 10.0.2.21/24, fd00::21/64'),
    gateway: z.string().refine(isIPv4, 'must be an IPv4 address').optional().describe('IPv4 default route'),
    gateway6: z.string().refine(isIPv6, 'must be an IPv6 address').optional().describe('IPv6 default route'),
    dns: z.array(ip('a name server')).default([]).describe('name servers'),
    search: z
      .array(z.string().regex(HOSTNAME_RE, 'must be a domain name'))
      .default([])
      .describe('DNS search domains'),
  })
  .strict();

export const NodeFileSchema = z
  .object({
    path: z.string().describe('where in the installed system, e.g. /etc/hosts'),
    source: z
      .string()
      .optional()
      .describe('a file of the project (path relative to osbake.yaml) whose bytes are written'),
    content: z.string().optional().describe('the text to write (instead of source)'),
    mode: z
      .string()
      .regex(/^0?[0-7]{3}$/, 'must be an octal mode like "0644"')
      .default('0644')
      .describe('octal mode (owner root:root)'),
  })
  .strict();

export const NodeSchema = z
  .object({
    hostname: z
      .string()
      .regex(HOSTNAME_RE, 'must be a host name (letters, digits, dashes; dots between labels)')
      .optional()
      .describe("the installed system's hostname (default: the node's name)"),
    mac: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe('MAC address(es) of its NICs: a network install and the stick find the node by them'),
    serial: z
      .string()
      .regex(/^[\x21-\x7e]{1,64}$/, 'must be printable characters without spaces')
      .optional()
      .describe(
        'DMI system serial number (dmidecode -s system-serial-number): the stick finds the node by it',
      ),
    target: z
      .string()
      .regex(TARGET_RE, 'must be a whole disk as the kernel names it, e.g. sda, vda, nvme0n1')
      .transform((t) => (t.startsWith('/dev/') ? t : `/dev/${t}`))
      .optional()
      .describe('the disk to install on (default: the menu asks)'),
    then: z.enum(NETBOOT_THEN).default('poweroff').describe('after the install: poweroff | reboot | shell'),
    network: NodeNetworkSchema.optional().describe('addresses (default: DHCP, as the image has it)'),
    authorizedKeys: z
      .record(z.string(), z.array(z.string()))
      .default({})
      .describe('per user of the image, SSH public keys added to ~/.ssh/authorized_keys'),
    files: z.array(NodeFileSchema).default([]).describe('extra files written into the installed system'),
  })
  .strict();

export type NodeInput = z.output<typeof NodeSchema>;

/** A node as osbake uses it, whichever spelling it came from. */
export interface ClusterNode {
  name: string;
  hostname?: string;
  /** Normalized (aa:bb:…), first = the one a network install boots from. */
  macs: string[];
  serial?: string;
  target?: string;
  then: (typeof NETBOOT_THEN)[number];
  network?: z.output<typeof NodeNetworkSchema>;
  authorizedKeys: Record<string, string[]>;
  files: z.output<typeof NodeFileSchema>[];
}

/** A node's name: what the stick's menu shows and the records say. */
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

type AddIssue = (path: (string | number)[], message: string) => void;

/** Checks of one node that need the whole entry (addresses vs gateway, keys, files) (pure). */
function checkNode(name: string, n: NodeInput, add: AddIssue): void {
  if (!NODE_NAME_RE.test(name)) add([], `node name "${name}" must be letters, digits, . _ - (at most 63)`);
  const macs = n.mac === undefined ? [] : Array.isArray(n.mac) ? n.mac : [n.mac];
  macs.forEach((m, i) => {
    if (!normalizeMac(m))
      add(
        ['mac', ...(Array.isArray(n.mac) ? [i] : [])],
        `"${m}" is not a node's MAC address (like 52:54:00:12:34:56)`,
      );
  });
  if (n.hostname === undefined && !HOSTNAME_RE.test(name))
    add(['hostname'], `the name "${name}" is not a host name: give hostname:`);
  const net = n.network;
  if (net) {
    if (net.interface !== undefined && !normalizeMac(net.interface))
      add(['network', 'interface'], 'must be the MAC address of one of its NICs');
    const cidrs = net.addresses.map((a, i) => {
      const c = parseCidr(a);
      if (!c) add(['network', 'addresses', i], `"${a}" is not ADDRESS/PREFIX (IPv4 /1-32, IPv6 /1-128)`);
      else if (c.family === 4) {
        const p = ipv4HostProblem(c);
        if (p) add(['network', 'addresses', i], `${a} ${p}`);
      }
      return c;
    });
    const v4 = cidrs.filter((c) => c?.family === 4);
    const v6 = cidrs.filter((c) => c?.family === 6);
    if (net.gateway !== undefined) {
      if (v4.length === 0)
        add(['network', 'gateway'], 'an IPv4 gateway needs a static IPv4 address (or use dhcp)');
      else if (!v4.some((c) => c && inSubnet(c, net.gateway as string)))
        add(
          ['network', 'gateway'],
          `${net.gateway} is outside the subnet of ${net.addresses.filter((a) => parseCidr(a)?.family === 4).join(', ')}`,
        );
      else if (v4.some((c) => c?.address === net.gateway))
        add(['network', 'gateway'], "is the node's own address");
    }
    if (net.gateway6 !== undefined) {
      const linkLocal = inSubnet({ address: 'fe80::', prefix: 10, family: 6 }, net.gateway6);
      if (v6.length === 0 && !linkLocal)
        add(['network', 'gateway6'], 'an IPv6 gateway needs a static IPv6 address');
      else if (!linkLocal && !v6.some((c) => c && inSubnet(c, net.gateway6 as string)))
        add(
          ['network', 'gateway6'],
          `${net.gateway6} is outside the subnet of the node's IPv6 addresses (or use a link-local fe80:: router)`,
        );
    }
    if (net.dhcp === true && v4.length > 0)
      add(['network', 'dhcp'], 'dhcp: true and a static IPv4 address: choose one');
    if (net.dhcp === false && v4.length === 0 && v6.length === 0)
      add(['network', 'dhcp'], 'dhcp: false without a static address leaves the node unreachable');
  }
  for (const [user, keys] of Object.entries(n.authorizedKeys)) {
    if (!USER_RE.test(user)) add(['authorizedKeys', user], `"${user}" is not a user name`);
    keys.forEach((k, i) => {
      const p = publicKeyProblem(k);
      if (p) add(['authorizedKeys', user, i], `not an SSH public key: ${p}`);
    });
  }
  const paths = new Set<string>();
  n.files.forEach((f, i) => {
    const p = filePathProblem(f.path);
    if (p) add(['files', i, 'path'], `${f.path} ${p}`);
    if (paths.has(f.path)) add(['files', i, 'path'], `${f.path} is given twice`);
    paths.add(f.path);
    if ((f.source === undefined) === (f.content === undefined))
      add(['files', i], 'give exactly one of source (a project file) and content');
    if (f.content !== undefined && Buffer.byteLength(f.content) > NODE_FILE_MAX_BYTES)
      add(['files', i, 'content'], `larger than ${NODE_FILE_MAX_BYTES / 1024} KiB`);
    if (f.source !== undefined && (f.source.startsWith('/') || f.source.split('/').includes('..')))
      add(['files', i, 'source'], 'must be a path inside the project (relative, no ..)');
  });
}

/** Both spellings → one list (pure; run after the per-entry checks). */
export function clusterNodes(
  nodes: Record<string, NodeInput>,
  netboot: Pick<NetbootConfig, 'nodes'>,
): ClusterNode[] {
  const out: ClusterNode[] = [];
  for (const [name, n] of Object.entries(nodes)) {
    const macs = (n.mac === undefined ? [] : Array.isArray(n.mac) ? n.mac : [n.mac])
      .map((m) => normalizeMac(m))
      .filter((m): m is string => m !== undefined);
    out.push({
      name,
      ...(n.hostname !== undefined || HOSTNAME_RE.test(name) ? { hostname: n.hostname ?? name } : {}),
      macs,
      ...(n.serial !== undefined ? { serial: n.serial } : {}),
      ...(n.target !== undefined ? { target: n.target } : {}),
      then: n.then,
      ...(n.network ? { network: n.network } : {}),
      authorizedKeys: n.authorizedKeys,
      files: n.files,
    });
  }
  for (const [key, n] of Object.entries(netboot.nodes)) {
    const mac = normalizeMac(key);
    if (!mac) continue;
    out.push({
      name: n.hostname ?? mac.replaceAll(':', '-'),
      ...(n.hostname !== undefined ? { hostname: n.hostname } : {}),
      macs: [mac],
      ...(n.target !== undefined ? { target: n.target } : {}),
      then: n.then,
      authorizedKeys: {},
      files: [],
    });
  }
  return out;
}

/**
 * The checks across nodes (pure): a MAC, serial, hostname or address belongs to one node only;
 * a node in both spellings is refused. Problems go to `add` with the path of the later entry.
 */
export function checkNodes(
  nodes: Record<string, NodeInput>,
  netboot: Pick<NetbootConfig, 'nodes'>,
  add: (path: (string | number)[], message: string) => void,
): void {
  for (const [name, n] of Object.entries(nodes)) checkNode(name, n, (p, m) => add(['nodes', name, ...p], m));
  const owners = new Map<string, string>();
  const claim = (kind: string, value: string, who: string, path: (string | number)[]) => {
    const k = `${kind} ${value.toLowerCase()}`;
    const other = owners.get(k);
    if (other !== undefined && other !== who) add(path, `${kind} ${value} is already that of node ${other}`);
    else owners.set(k, who);
  };
  const all = clusterNodes(nodes, netboot);
  const named = new Map<string, number>();
  for (const n of all) named.set(n.name, (named.get(n.name) ?? 0) + 1);
  for (const n of all) {
    const path = nodes[n.name] ? ['nodes', n.name] : ['netboot', 'nodes'];
    if (nodes[n.name] && (named.get(n.name) ?? 0) > 1)
      add(path, `node ${n.name} is also in netboot.nodes: keep it in one place (nodes:)`);
    for (const m of n.macs) claim('MAC', m, n.name, [...path, 'mac']);
    if (n.serial) claim('serial', n.serial, n.name, [...path, 'serial']);
    if (n.hostname) claim('hostname', n.hostname, n.name, [...path, 'hostname']);
    for (const a of n.network?.addresses ?? []) {
      const c = parseCidr(a);
      if (c) claim('address', canonicalIp(c.address), n.name, [...path, 'network', 'addresses']);
    }
  }
}

/** The node that has this MAC, or undefined (pure). */
export function nodeByMac(nodes: readonly ClusterNode[], mac: string): ClusterNode | undefined {
  return nodes.find((n) => n.macs.includes(mac));
}

/** A project's nodes, both spellings merged (pure). */
export function projectNodes(config: {
  nodes: Record<string, NodeInput>;
  netboot: Pick<NetbootConfig, 'nodes'>;
}): ClusterNode[] {
  return clusterNodes(config.nodes, config.netboot);
}
