/**
 * Block devices a USB image may be written to, and the checks that keep burn away from the wrong
 * disk: not removable, mounted (the disk or a partition, per lsblk, /proc/self/mountinfo and
 * /proc/swaps), holding /, read-only, too small. Pure: parsing and assessment; gathering runs lsblk.
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { capture } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export const LSBLK_COLUMNS = 'NAME,PATH,SIZE,MODEL,SERIAL,TRAN,RM,HOTPLUG,TYPE,MOUNTPOINTS,PKNAME,RO,MAJ:MIN';

/** lsblk ≥ 2.37 prints booleans; older versions print "0"/"1". */
const flag = z
  .union([z.boolean(), z.string(), z.number(), z.null()])
  .transform((v) => v === true || v === '1' || v === 1);
const text = z
  .string()
  .nullish()
  .transform((v) => (v ?? '').trim());

export interface LsblkNode {
  name: string;
  path: string;
  size: number;
  model: string;
  serial: string;
  tran: string;
  rm: boolean;
  hotplug: boolean;
  type: string;
  mountpoints: string[];
  pkname: string;
  ro: boolean;
  majMin: string;
  children: LsblkNode[];
}

const NodeSchema: z.ZodType<LsblkNode, unknown> = z.lazy(() =>
  z
    .object({
      name: z.string(),
      path: z.string(),
      size: z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number),
      model: text,
      serial: text,
      tran: text,
      rm: flag,
      hotplug: flag,
      type: z.string(),
      mountpoints: z.array(z.string().nullable()).optional(),
      mountpoint: z.string().nullable().optional(),
      pkname: text,
      ro: flag,
      'maj:min': z.string().default(''),
      children: z.array(NodeSchema).default([]),
    })
    .transform((d) => ({
      name: d.name,
      path: d.path,
      size: d.size,
      model: d.model,
      serial: d.serial,
      tran: d.tran,
      rm: d.rm,
      hotplug: d.hotplug,
      type: d.type,
      mountpoints: [...(d.mountpoints ?? []), d.mountpoint ?? null].filter((m): m is string => !!m),
      pkname: d.pkname,
      ro: d.ro,
      majMin: d['maj:min'],
      children: d.children,
    })),
);

const LsblkSchema = z.object({ blockdevices: z.array(NodeSchema) });

/** `lsblk -J -b -o LSBLK_COLUMNS` output → the device tree. */
export function parseLsblk(json: string): LsblkNode[] {
  const parsed = LsblkSchema.safeParse(JSON.parse(json));
  if (!parsed.success) throw new Error(`unexpected lsblk output: ${parsed.error.issues[0]?.message ?? '?'}`);
  return parsed.data.blockdevices;
}

/** A node and everything below it (partitions, and whatever sits on them). */
export function descendants(n: LsblkNode): LsblkNode[] {
  return [n, ...n.children.flatMap(descendants)];
}

export function flatten(tree: readonly LsblkNode[]): LsblkNode[] {
  return tree.flatMap(descendants);
}

export interface MountEntry {
  majMin: string;
  mountPoint: string;
  source: string;
}

const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** /proc/self/mountinfo → (major:minor, mount point, source). */
export function parseMountinfo(textIn: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of textIn.split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash < 6 || f[2] === undefined || f[4] === undefined) continue;
    out.push({ majMin: f[2], mountPoint: unescapeOctal(f[4]), source: unescapeOctal(f[dash + 2] ?? '') });
  }
  return out;
}

/** /proc/swaps → the swap files and devices in use. */
export function parseSwaps(textIn: string): string[] {
  return textIn
    .split('\n')
    .slice(1)
    .map((l) => unescapeOctal(l.split(/\s+/)[0] ?? ''))
    .filter((s) => s.length > 0);
}

export interface SystemState {
  tree: LsblkNode[];
  mounts: MountEntry[];
  swaps: string[];
}

/** The whole disk (or loop device) a node belongs to, by walking PKNAME up. */
export function diskOf(all: readonly LsblkNode[], n: LsblkNode): LsblkNode {
  let cur = n;
  for (let i = 0; i < 16 && cur.pkname; i++) {
    const parent = all.find((d) => d.name === cur.pkname);
    if (!parent) break;
    cur = parent;
  }
  return cur;
}

/** The disk that holds the root file system, if lsblk knows its device. */
export function rootDisk(s: SystemState): LsblkNode | undefined {
  const root = [...s.mounts].reverse().find((m) => m.mountPoint === '/');
  if (!root) return undefined;
  const all = flatten(s.tree);
  const dev = all.find((d) => d.majMin === root.majMin) ?? all.find((d) => d.path === root.source);
  return dev ? diskOf(all, dev) : undefined;
}

export const FORCEABLE_CHECKS = ['removable', 'mounted', 'size'] as const;
export type ForceableCheck = (typeof FORCEABLE_CHECKS)[number];
/** root and system protect this machine's own disks: no --force skips them (bmaptool has no such override either). */
export type Check = ForceableCheck | 'readonly' | 'whole-disk' | 'root' | 'system';
const NEVER_FORCEABLE: readonly string[] = ['readonly', 'whole-disk', 'root', 'system'];

/** Mount points of the running system: a disk holding one is never written. */
export const SYSTEM_MOUNTS = [
  '/',
  '/boot',
  '/boot/efi',
  '/efi',
  '/usr',
  '/var',
  '/etc',
  '/home',
  '/opt',
  '/srv',
  '/root',
];

export interface Refusal {
  check: Check;
  message: string;
  hint: string;
}

export function isRemovable(d: LsblkNode): boolean {
  return d.rm || d.hotplug || d.tran === 'usb';
}

/** Where the disk or any of its partitions is in use: mount points and swap. */
export function usesOf(disk: LsblkNode, s: SystemState): string[] {
  const nodes = descendants(disk);
  const uses = new Set<string>();
  for (const n of nodes) {
    for (const m of n.mountpoints) uses.add(`${n.path} on ${m}`);
    for (const m of s.mounts) {
      if ((n.majMin !== '' && m.majMin === n.majMin) || m.source === n.path)
        uses.add(`${n.path} on ${m.mountPoint}`);
    }
    if (s.swaps.includes(n.path)) uses.add(`${n.path} as swap`);
  }
  return [...uses];
}

/** Every reason not to write an image of `imageSize` bytes to `disk` (pure). */
export function assessTarget(disk: LsblkNode, s: SystemState, imageSize: number): Refusal[] {
  const out: Refusal[] = [];
  const name = disk.path;
  if (disk.type === 'part' || disk.pkname) {
    out.push({
      check: 'whole-disk',
      message: `${name} is a partition, not a whole disk`,
      hint: `give the disk it is on: /dev/${disk.pkname || '?'}`,
    });
  }
  if (!isRemovable(disk)) {
    out.push({
      check: 'removable',
      message: `${name} is not a removable disk (RM=0, HOTPLUG=0, transport ${disk.tran || 'none'})`,
      hint: 'if you are sure (a USB enclosure that reports a fixed disk, a loop device), add --force removable',
    });
  }
  const root = rootDisk(s);
  if (root && root.path === disk.path) {
    out.push({
      check: 'root',
      message: `${name} holds the root file system (/) of this machine`,
      hint: 'pick the USB drive instead; osbake burn without a device lists the candidates',
    });
  }
  const uses = usesOf(disk, s);
  const system = uses.filter(
    (u) => SYSTEM_MOUNTS.some((m) => u.endsWith(` on ${m}`)) || u.endsWith(' as swap'),
  );
  if (system.length > 0 && !(root && root.path === disk.path)) {
    out.push({
      check: 'system',
      message: `${name} holds this machine's own file systems: ${system.join(', ')}`,
      hint: 'pick the USB drive instead; osbake burn without a device lists the candidates',
    });
  }
  if (uses.length > 0) {
    out.push({
      check: 'mounted',
      message: `${name} is in use: ${uses.join(', ')}`,
      hint: `unmount it first (umount ${disk.path}*), or swapoff`,
    });
  }
  if (disk.ro) {
    out.push({
      check: 'readonly',
      message: `${name} is read-only`,
      hint: 'check the write-protect switch of the drive or card',
    });
  }
  if (disk.size < imageSize) {
    out.push({
      check: 'size',
      message: `${name} is too small: ${disk.size} bytes, the image needs ${imageSize}`,
      hint: 'use a larger drive',
    });
  }
  return out;
}

/** "removable,size" or "all" → the checks to skip; anything else is a usage error. */
export function parseForce(value: string | boolean | undefined): ForceableCheck[] {
  if (value === undefined || value === false) return [];
  if (value === true) return ['removable'];
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.includes('all')) return [...FORCEABLE_CHECKS];
  for (const n of names) {
    if (NEVER_FORCEABLE.includes(n)) {
      throw new UserError(
        'E_USAGE',
        `--force ${n}: this check cannot be skipped`,
        `it protects this machine's disks; checks that --force can skip: ${FORCEABLE_CHECKS.join(', ')}`,
      );
    }
    if (!(FORCEABLE_CHECKS as readonly string[]).includes(n)) {
      throw new UserError(
        'E_USAGE',
        `--force ${n}: no such check`,
        `checks that --force can skip: ${FORCEABLE_CHECKS.join(', ')}, all (bare --force = removable)`,
      );
    }
  }
  return names as ForceableCheck[];
}

export function remainingRefusals(
  refusals: readonly Refusal[],
  forced: readonly ForceableCheck[],
): Refusal[] {
  return refusals.filter((r) => !(forced as readonly string[]).includes(r.check));
}

/** Find the device the user named (path, name or a symlink to it). */
export function findDevice(s: SystemState, arg: string): LsblkNode | undefined {
  const all = flatten(s.tree);
  let real = arg;
  try {
    real = realpathSync(arg);
  } catch {
    // not a path: maybe a bare name
  }
  return all.find((d) => d.path === real || d.path === arg || d.name === arg);
}

export interface Candidate {
  path: string;
  name: string;
  size: number;
  model: string;
  serial: string;
  tran: string;
  removable: boolean;
  /** Why burn would refuse it without --force (empty: fine). */
  refusals: Check[];
}

/** Whole disks and loop devices with a size, each with what burn would say about it. */
export function candidates(s: SystemState, imageSize = 0): Candidate[] {
  return s.tree
    .filter((d) => (d.type === 'disk' || d.type === 'loop') && d.size > 0)
    .map((d) => ({
      path: d.path,
      name: d.name,
      size: d.size,
      model: d.model,
      serial: d.serial,
      tran: d.tran,
      removable: isRemovable(d),
      refusals: assessTarget(d, s, imageSize).map((r) => r.check),
    }));
}

async function readOr(file: string, fallback: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** lsblk, /proc/self/mountinfo and /proc/swaps, read now. */
export async function readSystemState(log: Logger): Promise<SystemState> {
  const json = await capture(['lsblk', '-J', '-b', '-o', LSBLK_COLUMNS], { log, tag: 'lsblk' });
  return {
    tree: parseLsblk(json),
    mounts: parseMountinfo(await readOr('/proc/self/mountinfo', '')),
    swaps: parseSwaps(await readOr('/proc/swaps', '')),
  };
}
