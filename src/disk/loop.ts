/**
 * The one way osbake attaches a disk image to loop devices: the whole image with its partitions
 * (losetup, partx, and the partition nodes' appearance — retried, and made from sysfs when
 * devtmpfs does not make them), or one extent of it as a device of its own (offset + size limit:
 * what GRUB's BIOS set-up must see as a whole disk). Host-wide, osbake processes take turns
 * through one lock while they attach (partx of one process must not race another's); detaching
 * is idempotent and removes only what this attach made.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { acquireLock } from '../config/lock.js';
import { UserError } from '../errors.js';
import { capture, run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export interface PartitionExtent {
  number: number;
  /** Byte offset and size inside the image. */
  offset: number;
  size: number;
  /** Partition type (GPT GUID or MBR hex code) as sfdisk reports it. */
  type: string;
}

/** The partition table's entries of `image` in bytes (sfdisk --json). */
export async function partitionExtents(
  image: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<PartitionExtent[]> {
  const out = await capture(['sfdisk', '--json', image], { log, signal });
  return parseSfdiskJson(out, image);
}

/** sfdisk --json → extents (pure). */
export function parseSfdiskJson(json: string, image: string): PartitionExtent[] {
  let t: {
    partitiontable?: {
      sectorsize?: number;
      partitions?: { node: string; start: number; size: number; type: string }[];
    };
  };
  try {
    t = JSON.parse(json) as typeof t;
  } catch {
    throw new Error(`sfdisk --json ${image}: not JSON`);
  }
  const sector = t.partitiontable?.sectorsize ?? 512;
  return (t.partitiontable?.partitions ?? []).map((p) => {
    const m = /(\d+)$/.exec(p.node);
    if (!m) throw new Error(`sfdisk --json ${image}: partition node ${p.node} has no number`);
    return { number: Number(m[1]), offset: p.start * sector, size: p.size * sector, type: String(p.type) };
  });
}

export interface AttachedImage {
  /** /dev/loopN: the whole image. */
  device: string;
  /** Partition number → its device node (/dev/loopNpM). */
  partitions: Map<number, string>;
  detach(): Promise<void>;
}

export interface AttachOptions {
  log: Logger;
  signal?: AbortSignal;
  /** How long to wait for the kernel to show a partition, per try (default 5 s; three tries). */
  nodeWaitMs?: number;
}

const ATTACH_LOCK = '/run/lock/osbake-loop-attach';
const TRIES = 3;

async function withAttachLock<T>(fn: () => Promise<T>): Promise<T> {
  const release = await acquireLock(ATTACH_LOCK, {
    what: 'loop device set-up (host-wide)',
    waitMs: 120_000,
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** losetup --find --show, retried when a concurrent attach took the free device first. */
async function losetup(args: string[], o: AttachOptions): Promise<string> {
  let last: unknown;
  for (let i = 0; i < TRIES; i++) {
    try {
      return await capture(['losetup', '--find', '--show', ...args], { log: o.log, signal: o.signal });
    } catch (err) {
      last = err;
      if (o.signal?.aborted) throw err;
      await sleep(200 * (i + 1));
    }
  }
  throw last;
}

/** Attach `image` read-write as /dev/loopN without partitions, at `offset` for `size` bytes. */
export async function attachExtent(
  image: string,
  extent: { offset: number; size: number },
  o: AttachOptions,
): Promise<{ device: string; detach(): Promise<void> }> {
  const device = await withAttachLock(() =>
    losetup([`--offset=${extent.offset}`, `--sizelimit=${extent.size}`, image], o),
  );
  let detached = false;
  return {
    device,
    async detach() {
      if (detached) return;
      detached = true;
      await run(['losetup', '--detach', device], { log: o.log });
    },
  };
}

/** The partition's sysfs "major:minor", or undefined while the kernel has not made it. */
async function sysfsDev(loopName: string, n: number): Promise<string | undefined> {
  return (
    await readFile(`/sys/block/${loopName}/${loopName}p${n}/dev`, 'utf8').catch(() => undefined)
  )?.trim();
}

async function nodeMatches(path: string, dev: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isBlockDevice()) return false;
  const [maj, min] = dev.split(':').map(Number);
  // Linux dev_t: major in bits 8..19, minor in 0..7 and 20..31.
  const rdevMajor = (st.rdev >> 8) & 0xfff;
  const rdevMinor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
  return rdevMajor === maj && rdevMinor === min;
}

/**
 * Attach the whole image with its partitions: every partition of its table gets its node, or a
 * user error names the device and what the kernel did not do.
 */
export async function attachImage(image: string, o: AttachOptions): Promise<AttachedImage> {
  const wanted = await partitionExtents(image, o.log, o.signal);
  const made: string[] = [];
  let device = '';
  const detach = async () => {
    if (!device) return;
    const d = device;
    device = '';
    for (const p of made) await rm(p, { force: true });
    await run(['partx', '--delete', d], { log: o.log }).catch(() => undefined);
    await run(['losetup', '--detach', d], { log: o.log });
  };
  try {
    const partitions = await withAttachLock(async () => {
      device = await losetup([image], o);
      return partitionNodes(device, wanted, made, o);
    });
    const attached = device;
    return { device: attached, partitions, detach };
  } catch (err) {
    await detach().catch(() => undefined);
    throw err;
  }
}

async function partitionNodes(
  device: string,
  wanted: PartitionExtent[],
  made: string[],
  o: AttachOptions,
): Promise<Map<number, string>> {
  const name = device.replace(/^\/dev\//, '');
  const waitMs = o.nodeWaitMs ?? 5000;
  const nodes = new Map<number, string>();
  for (let attempt = 1; nodes.size < wanted.length; attempt++) {
    await run(['partx', '--update', device], { log: o.log, signal: o.signal });
    const until = Date.now() + waitMs;
    for (;;) {
      for (const p of wanted) {
        if (nodes.has(p.number)) continue;
        const dev = await sysfsDev(name, p.number);
        if (!dev) continue;
        const path = `/dev/${name}p${p.number}`;
        if (await nodeMatches(path, dev)) {
          nodes.set(p.number, path);
        } else if (Date.now() > until - waitMs / 2 && !existsSync(path)) {
          // The kernel has the partition but no node appeared (no devtmpfs, or it lags): make it.
          await run(['mknod', '-m', '0660', path, 'b', ...dev.split(':')], { log: o.log });
          made.push(path);
        }
      }
      if (nodes.size === wanted.length || Date.now() > until || o.signal?.aborted) break;
      await sleep(50);
    }
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted');
    if (nodes.size < wanted.length && attempt >= TRIES) {
      const missing = wanted.filter((p) => !nodes.has(p.number)).map((p) => `${device}p${p.number}`);
      throw new UserError(
        'E_LOOP',
        `${missing.join(', ')} did not appear after ${TRIES} tries of partx (the kernel did not add the partitions of ${device})`,
        'check that /dev is devtmpfs and that loop devices support partitions (losetup -P); `osbake clean` detaches loop devices killed builds left',
      );
    }
  }
  return nodes;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
