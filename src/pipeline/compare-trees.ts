/**
 * What differs between two builds of an image, file by file: both qcow2s are read as raw (a
 * sparse conversion in the scratch directory), the root file system of each (the last Linux
 * partition) is mounted read-only, and every path is compared by type, size, mode, owner, link
 * target and SHA-256. The disks' other bytes (partition table, ESP, BIOS boot) are compared whole.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { attachExtent, partitionExtents } from '../disk/loop.js';
import { run } from '../exec/run.js';
import { makeDirsSync } from '../fsx/input.js';
import type { Logger } from '../log/logger.js';

export interface TreeDifference {
  kind: 'added' | 'removed' | 'changed' | 'disk';
  path: string;
  detail?: string;
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  sha256?: string;
  target?: string;
}

/** The differences between two trees' listings (pure). */
export function diffListings(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): TreeDifference[] {
  const out: TreeDifference[] = [];
  for (const [path, x] of a) {
    const y = b.get(path);
    if (!y) {
      out.push({ kind: 'removed', path });
      continue;
    }
    const what: string[] = [];
    if (x.type !== y.type) what.push(`type ${x.type} → ${y.type}`);
    if (x.size !== y.size) what.push(`size ${x.size} → ${y.size}`);
    if (x.mode !== y.mode) what.push(`mode ${x.mode.toString(8)} → ${y.mode.toString(8)}`);
    if (x.uid !== y.uid || x.gid !== y.gid) what.push(`owner ${x.uid}:${x.gid} → ${y.uid}:${y.gid}`);
    if (x.target !== y.target) what.push(`link ${x.target} → ${y.target}`);
    if (x.sha256 !== y.sha256 && what.length === 0) what.push('content');
    if (what.length) out.push({ kind: 'changed', path, detail: what.join(', ') });
  }
  for (const path of b.keys()) if (!a.has(path)) out.push({ kind: 'added', path });
  return out.sort((p, q) => p.path.localeCompare(q.path));
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Every path below root with its metadata (regular files hashed). */
export async function listTree(root: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(p);
      const base = { size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        out.set(r, { type: 'dir', ...base, size: 0 });
        await walk(p, r);
      } else if (st.isSymbolicLink()) out.set(r, { type: 'link', ...base, target: await readlink(p) });
      else if (st.isFile()) out.set(r, { type: 'file', ...base, sha256: await sha256(p) });
      else out.set(r, { type: 'other', ...base });
    }
  };
  await walk(root, '');
  return out;
}

async function withRootTree<T>(
  qcow2: string,
  work: string,
  log: Logger,
  fn: (root: string, raw: string) => Promise<T>,
): Promise<T> {
  const raw = `${work}.raw`;
  const mnt = `${work}.mnt`;
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw], { log });
  makeDirsSync(mnt);
  const parts = await partitionExtents(raw, log);
  const root = parts.at(-1);
  if (!root) throw new Error(`${qcow2} has no partitions`);
  const dev = await attachExtent(raw, root, { log });
  try {
    await run(['mount', '-o', 'ro,noload', dev.device, mnt], { log });
    try {
      return await fn(mnt, raw);
    } finally {
      await run(['umount', mnt], { log }).catch(() => undefined);
    }
  } finally {
    await dev.detach();
    await rm(mnt, { recursive: true, force: true });
  }
}

/** The file-by-file differences of two builds (qcow2), worked out in scratch. */
export async function compareImageTrees(
  recorded: string,
  rebuilt: string,
  scratch: string,
  log: Logger,
): Promise<TreeDifference[]> {
  const a = await withRootTree(recorded, join(scratch, 'recorded'), log, (root) => listTree(root));
  const b = await withRootTree(rebuilt, join(scratch, 'rebuilt'), log, (root) => listTree(root));
  const diff = diffListings(a, b);
  // Bytes outside the root file system: the partitions before it, compared whole.
  const parts = await partitionExtents(join(scratch, 'recorded.raw'), log);
  const rootStart = parts.at(-1)?.offset ?? 0;
  const head = async (raw: string) => {
    const h = createHash('sha256');
    for await (const c of createReadStream(raw, { start: 0, end: rootStart - 1 })) h.update(c as Buffer);
    return h.digest('hex');
  };
  if (
    rootStart > 0 &&
    (await head(join(scratch, 'recorded.raw'))) !== (await head(join(scratch, 'rebuilt.raw')))
  ) {
    diff.unshift({
      kind: 'disk',
      path: '(partition table, BIOS boot, ESP)',
      detail: `first ${rootStart} bytes differ`,
    });
  }
  if (diff.length === 0)
    diff.push({ kind: 'disk', path: '(root file system)', detail: 'same files, different blocks' });
  for (const f of ['recorded.raw', 'rebuilt.raw']) await rm(join(scratch, f), { force: true });
  return diff;
}
