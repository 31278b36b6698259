/**
 * osbake.yaml `netboot:` — what `osbake serve --netboot` tells the nodes that boot from it: per
 * node (by MAC address) the hostname, the target disk and what to do afterwards; what an unknown
 * node gets. Every value ends up in an iPXE script and on a kernel command line, so each is held
 * to a character set that cannot break out of either (no spaces, quotes, `$`, newlines).
 * (`then` is the issue's and installer.conf's name for it; biome's noThenProperty is off for the
 * netboot files in biome.json: these objects are never awaited.)
 */
import { z } from 'zod';

/** "52-54-00-AB-CD-EF", "5254.00ab.cdef", "525400abcdef" → "52:54:00:ab:cd:ef"; undefined if not a node's MAC (pure). */
export function normalizeMac(text: string): string | undefined {
  const hex = text.trim().toLowerCase();
  if (!/^([0-9a-f]{2}([:-]?)){5}[0-9a-f]{2}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(hex))
    return undefined;
  const digits = hex.replace(/[:.-]/g, '');
  if (digits.length !== 12) return undefined;
  const mac = digits.match(/../g)?.join(':');
  // A node's own address only: multicast/broadcast (group bit) and all-zero MACs are nobody's.
  return mac && isNodeMac(mac) ? mac : undefined;
}

/** A MAC a node can have: unicast (group bit clear), not all zeros (pure). */
export function isNodeMac(mac: string): boolean {
  const first = Number.parseInt(mac.slice(0, 2), 16);
  return (first & 1) === 0 && mac !== '00:00:00:00:00:00';
}

/** A TCP/UDP port a server can be reached on: 1-65535 (pure). */
export function isPort(text: string | number): boolean {
  const n = typeof text === 'number' ? text : /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** An IPv4 address a host can have: 1-223 first octet, not loopback, not 0.0.0.0 or broadcast (pure). */
export function isHostIPv4(addr: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (!m) return false;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return false;
  const [a = 0] = o;
  return a >= 1 && a <= 223 && a !== 127 && addr !== '255.255.255.255';
}

/** A host name: RFC 1123 labels, at most 253 characters. */
export const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A disk as the installer names it: vda, sda, nvme0n1, mmcblk0, with or without /dev/. */
export const TARGET_RE =
  /^(\/dev\/)?(sd[a-z]{1,3}|vd[a-z]{1,3}|hd[a-z]{1,3}|xvd[a-z]{1,3}|nvme\d+n\d+|mmcblk\d+)$/;

export const NETBOOT_THEN = ['poweroff', 'reboot', 'shell'] as const;

export const NetbootNodeSchema = z
  .object({
    hostname: z
      .string()
      .regex(HOSTNAME_RE, 'must be a host name (letters, digits, dashes; dots between labels)')
      .optional()
      .describe("the installed system's hostname (default: the image's)"),
    target: z
      .string()
      .regex(
        TARGET_RE,
        'must be a whole disk as the kernel names it, e.g. sda, vda, nvme0n1 (/dev/disk/by-* names do not exist in the installer)',
      )
      .transform((t) => (t.startsWith('/dev/') ? t : `/dev/${t}`))
      .optional()
      .describe('the disk to install on (default: the menu on the console asks)'),
    then: z.enum(NETBOOT_THEN).default('poweroff').describe('after the install: poweroff | reboot | shell'),
  })
  .strict();

export const NetbootSchema = z
  .object({
    unknown: z
      .enum(['menu', 'refuse'])
      .default('menu')
      .describe('a MAC not under nodes: menu (the installer asks on the console) or refuse'),
    url: z
      .string()
      .regex(
        /^https?:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/,
        'must be http://HOST[:PORT] (no path, no trailing slash)',
      )
      .refine((u) => {
        const port = /:(\d{1,5})$/.exec(u)?.[1];
        return port === undefined || isPort(port);
      }, 'its port must be 1-65535')
      .optional()
      .describe("the server as the nodes reach it (default: the Host of the node's own request)"),
    kernelArgs: z
      .string()
      .regex(
        /^[A-Za-z0-9_.,:=/+@-]*( [A-Za-z0-9_.,:=/+@-]+)*$/,
        'must be kernel arguments separated by single spaces, without quotes or $',
      )
      .default('')
      .describe('more arguments for the installer kernel of every node'),
    nodes: z
      .record(z.string(), NetbootNodeSchema)
      .default({})
      .describe('per node, by MAC address (any spelling): hostname, target, then'),
  })
  .strict()
  .superRefine((n, ctx) => {
    const macs = new Map<string, string>();
    const hostnames = new Map<string, string>();
    for (const [key, node] of Object.entries(n.nodes)) {
      const mac = normalizeMac(key);
      if (!mac) {
        ctx.addIssue({
          code: 'custom',
          path: ['nodes', key],
          message: `"${key}" is not a node's MAC address (like 52:54:00:12:34:56; multicast, broadcast and zero addresses are nobody's)`,
        });
        continue;
      }
      const other = macs.get(mac);
      if (other !== undefined)
        ctx.addIssue({ code: 'custom', path: ['nodes', key], message: `the same MAC as "${other}"` });
      macs.set(mac, key);
      if (node.hostname) {
        const h = node.hostname.toLowerCase();
        const o = hostnames.get(h);
        if (o !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['nodes', key, 'hostname'],
            message: `hostname ${node.hostname} is already that of ${o}`,
          });
        hostnames.set(h, key);
      }
    }
  });

export type NetbootConfig = z.output<typeof NetbootSchema>;
export type NetbootNode = z.output<typeof NetbootNodeSchema>;

/** The node settings of a MAC (any spelling in the config), or undefined (pure). */
export function netbootNode(cfg: NetbootConfig, mac: string): NetbootNode | undefined {
  for (const [key, node] of Object.entries(cfg.nodes)) if (normalizeMac(key) === mac) return node;
  return undefined;
}
