/**
 * The one way osbake makes a FAT file system (the ESP of a vanilla disk, the stick's ESP): inside
 * a disk image at a byte offset, without mounting (vfat cannot be mounted here), with every
 * geometry value given explicitly. mkfs.fat left to itself sizes the FAT for the whole file it
 * sees: a 16 MiB ESP inside a file of more than about 512 MiB became a FAT32 with too few
 * clusters, which mkfs.fat then refused (or, with larger clusters, which mtools refuses).
 */
import { stat } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { run } from '../exec/run.js';
import type { Logger } from '../log/logger.js';

export const FAT_SECTOR = 512;
const MIB = 2 ** 20;

/** Smallest FAT osbake makes (FAT16 with one sector per cluster needs more than ~2 MiB). */
export const FAT_MIN_BYTES = 4 * MIB;
/** FAT32 from here on: enough 512-byte clusters (≥ 65525) with room to spare. */
export const FAT32_FROM_BYTES = 64 * MIB;
/** Largest FAT32 osbake makes (ESPs are small; this bounds the cluster count too). */
export const FAT_MAX_BYTES = 2 ** 40;

/** Cluster-count limits of the FAT types (Microsoft's FAT specification). */
export const FAT16_CLUSTERS = { min: 4085, max: 65524 };
export const FAT32_CLUSTERS = { min: 65525, max: 0x0ffffff5 };

export interface FatGeometry {
  bits: 16 | 32;
  /** Sectors (of 512 bytes) per cluster. */
  sectorsPerCluster: number;
  /** Data clusters, approximately: size over cluster size, less the reserved area and the FATs. */
  approxClusters: number;
}

/**
 * FAT type and cluster size for a file system of `bytes` (pure). FAT16 below 64 MiB (one or two
 * sectors per cluster keeps its cluster count inside FAT16's range), FAT32 from 64 MiB with the
 * smallest cluster that keeps the FAT at most 2^22 entries — always far inside FAT32's range,
 * which is what UEFI firmware and mtools check.
 */
export function fatGeometry(bytes: number): FatGeometry {
  if (!Number.isSafeInteger(bytes) || bytes % FAT_SECTOR !== 0) {
    throw new Error(`FAT size ${bytes} is not a whole number of 512-byte sectors`);
  }
  if (bytes < FAT_MIN_BYTES || bytes > FAT_MAX_BYTES) {
    throw new Error(`FAT size ${bytes} outside ${FAT_MIN_BYTES}..${FAT_MAX_BYTES} bytes`);
  }
  const sectors = bytes / FAT_SECTOR;
  if (bytes < FAT32_FROM_BYTES) {
    const spc = bytes <= 32 * MIB ? 1 : 2;
    // Reserved sector, two FATs of 2 bytes per cluster, 512 root entries (32 sectors).
    const overhead = 1 + 32 + 2 * Math.ceil(((sectors / spc) * 2) / FAT_SECTOR);
    return { bits: 16, sectorsPerCluster: spc, approxClusters: Math.floor((sectors - overhead) / spc) };
  }
  let spc = 1;
  while (sectors / spc > 2 ** 22 && spc < 128) spc *= 2;
  const overhead = 32 + 2 * Math.ceil(((sectors / spc) * 4) / FAT_SECTOR);
  return { bits: 32, sectorsPerCluster: spc, approxClusters: Math.floor((sectors - overhead) / spc) };
}

/** mkfs.fat's argv for a FAT of `size` bytes at byte `offset` of `image` (pure). */
export function mkfsFatArgv(o: {
  image: string;
  offset: number;
  size: number;
  label: string;
  /** 8 hex digits (the FAT volume id); fixed so that the same inputs give the same bytes. */
  volumeId: string;
}): string[] {
  if (o.offset % FAT_SECTOR !== 0) throw new Error(`FAT offset ${o.offset} is not sector-aligned`);
  if (!/^[0-9A-Fa-f]{8}$/.test(o.volumeId)) throw new Error(`bad FAT volume id ${o.volumeId}`);
  if (!/^[A-Z0-9_-]{1,11}$/.test(o.label)) throw new Error(`bad FAT label ${o.label}`);
  const g = fatGeometry(o.size);
  return [
    'mkfs.vfat',
    '-F',
    String(g.bits),
    '-S',
    String(FAT_SECTOR),
    '-s',
    String(g.sectorsPerCluster),
    '-n',
    o.label,
    // Fixed timestamps and boot-sector contents (the volume id is set by mlabel after).
    '--invariant',
    `--offset=${o.offset / FAT_SECTOR}`,
    o.image,
    String(o.size / 1024),
  ];
}

/**
 * Make the FAT inside `image` (which must already be at least offset + size bytes long: a FAT
 * never grows the file it is written into).
 */
export async function makeFat(o: {
  image: string;
  offset: number;
  size: number;
  label: string;
  volumeId: string;
  /** SOURCE_DATE_EPOCH for the label's timestamp (reproducible builds). */
  epoch?: number;
  log: Logger;
  signal?: AbortSignal;
}): Promise<void> {
  const argv = mkfsFatArgv(o);
  const { size } = await stat(o.image);
  if (o.offset + o.size > size) {
    throw new UserError(
      'E_DISK_LAYOUT',
      `${o.image}: the FAT at ${o.offset}+${o.size} bytes ends past the end of the image (${size} bytes)`,
      'this is a layout bug in osbake; report it with the build log',
    );
  }
  await run(argv, { log: o.log, signal: o.signal });
  // --invariant fixes the volume id to 1234-ABCD; mlabel sets ours (mtools stamps the label
  // with SOURCE_DATE_EPOCH when given, so the bytes stay the same for the same inputs).
  await run(['mlabel', '-N', o.volumeId.toUpperCase(), '-i', `${o.image}@@${o.offset}`, `::${o.label}`], {
    log: o.log,
    signal: o.signal,
    env: o.epoch === undefined ? undefined : { SOURCE_DATE_EPOCH: String(o.epoch) },
  });
}
