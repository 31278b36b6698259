/**
 * virsh against one hypervisor, and the volumes osbake keeps there: the vanilla disk uploaded once
 * per content hash (whole or not at all: a marker volume is made only after the upload finished),
 * one overlay per build backed by it, downloads of a build's overlay with progress.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize } from '../../artifacts/checksum.js';
import { acquireLock } from '../../config/lock.js';
import type { Hypervisor } from '../../config/project.js';
import { ProcessError, UserError } from '../../errors.js';
import { type RunResult, run } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';
import { formatBytes } from '../../log/progress.js';
import { vanillaMarkerName, vanillaVolumeName } from './domain.js';
import { lastLine, virshArgs } from './preflight.js';

export interface VirshContext {
  hypervisor: Hypervisor;
  log: Logger;
  /** Absent for cleanup work, which must run after an interruption too. */
  signal?: AbortSignal;
}

/** Run virsh; a failure becomes a one-line error naming the hypervisor and virsh's own last line. */
export async function virsh(
  c: VirshContext,
  args: string[],
  o: { okCodes?: number[]; timeoutMs?: number; what?: string } = {},
): Promise<RunResult> {
  try {
    return await run(virshArgs(c.hypervisor, args), {
      log: c.log,
      tag: 'virsh',
      signal: c.signal,
      okCodes: o.okCodes,
      timeoutMs: o.timeoutMs ?? 120_000,
      tailLines: 10,
      dieWithParent: true,
    });
  } catch (err) {
    if (!(err instanceof ProcessError)) throw err;
    const e = new ProcessError(err.argv, err.exitCode, err.outputTail, err.signal);
    e.message = `hypervisor ${c.hypervisor.name}: virsh ${o.what ?? args[0]} failed: ${lastLine(err.outputTail)}`;
    throw e;
  }
}

/** `virsh vol-download` of a volume (pure). */
export function volumeDownloadArgs(h: Hypervisor, volume: string, dest: string, home?: string): string[] {
  return virshArgs(h, ['vol-download', '--pool', h.pool, '--sparse', volume, dest], home);
}

/** Parse `virsh vol-info --bytes` ("Capacity: 8589934592 bytes", "Allocation: ..."). */
export function parseVolInfoBytes(out: string): { capacity?: number; allocation?: number } {
  const num = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+)`, 'mi').exec(out);
    return m ? Number(m[1]) : undefined;
  };
  return { capacity: num('Capacity'), allocation: num('Allocation') };
}

/** The volume names of `virsh -q vol-list` (pure). */
export function parseVolList(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n && !/^-+$/.test(n) && n !== 'Name');
}

/** Names of the volumes in the hypervisor's pool. */
export async function listVolumes(c: VirshContext): Promise<string[]> {
  // libvirt 9.0's vol-list has no --name: the first column of its table (virsh -q: no header).
  const r = await virsh(c, ['vol-list', '--pool', c.hypervisor.pool]);
  return parseVolList(r.stdout);
}

export async function volumeAllocation(c: VirshContext, volume: string): Promise<number> {
  const r = await virsh(c, ['vol-info', '--bytes', '--pool', c.hypervisor.pool, volume]);
  return parseVolInfoBytes(r.stdout).allocation ?? 0;
}

export async function deleteVolume(c: VirshContext, volume: string): Promise<void> {
  await virsh(c, ['vol-delete', '--pool', c.hypervisor.pool, volume]);
}

/** "12.3 MB/s" from bytes and milliseconds. */
export function rate(bytes: number, ms: number): string {
  return `${formatBytes(Math.round(bytes / Math.max(ms / 1000, 0.001)))}/s`;
}

/** Bytes, rate and ETA of a transfer, for the progress line. */
export function transferLine(label: string, done: number, total: number, ms: number): string {
  const perS = done / Math.max(ms / 1000, 0.001);
  const eta = perS > 0 && total > done ? `, ${Math.ceil((total - done) / perS)} s left` : '';
  const pct = total > 0 ? ` (${Math.floor((100 * done) / total)} %)` : '';
  return `${label}: ${formatBytes(done)} of ${formatBytes(total)}${pct}, ${rate(done, ms)}${eta}`;
}

export interface UploadResult {
  volume: string;
  uploaded: boolean;
  bytes: number;
  ms: number;
}

/**
 * The vanilla disk on the hypervisor, uploaded when its hash is not there yet: a raw volume of the
 * file's exact size (qcow2 inside; libvirt sees the format after pool-refresh), then the marker.
 * A volume without its marker is what an interrupted upload left: removed and uploaded again.
 * A local lock keeps two builds on this machine from uploading the same disk at once.
 */
export async function ensureVanillaVolume(
  c: VirshContext & { signal: AbortSignal },
  o: { disk: string; sha256: string; lockDir: string; progress: (text: string) => void },
): Promise<UploadResult> {
  const h = c.hypervisor;
  const volume = vanillaVolumeName(o.sha256);
  const marker = vanillaMarkerName(o.sha256);
  await mkdir(o.lockDir, { recursive: true });
  const release = await acquireLock(join(o.lockDir, `${h.name}-${o.sha256.slice(0, 16)}`), {
    what: `the upload of the vanilla disk to ${h.name}`,
    waitMs: 30 * 60_000,
    staleMs: 60_000,
    onWait: o.progress,
  });
  try {
    const have = new Set(await listVolumes(c));
    if (have.has(volume) && have.has(marker)) return { volume, uploaded: false, bytes: 0, ms: 0 };
    if (have.has(volume)) await deleteVolume(c, volume);
    const bytes = await fileSize(o.disk);
    const t0 = Date.now();
    await virsh(c, ['vol-create-as', h.pool, volume, String(bytes), '--allocation', '0', '--format', 'raw']);
    let polling = true;
    const poll = (async () => {
      while (polling) {
        await new Promise((r) => setTimeout(r, 2000));
        if (!polling) break;
        const done = await volumeAllocation({ hypervisor: h, log: c.log }, volume).catch(() => 0);
        o.progress(transferLine(`uploading the vanilla disk to ${h.name}`, done, bytes, Date.now() - t0));
      }
    })();
    try {
      await virsh(c, ['vol-upload', '--pool', h.pool, volume, o.disk], { timeoutMs: 60 * 60_000 });
    } finally {
      polling = false;
      await poll;
    }
    await virsh(c, ['pool-refresh', h.pool]);
    await virsh(c, ['vol-create-as', h.pool, marker, '0', '--format', 'raw']);
    return { volume, uploaded: true, bytes, ms: Date.now() - t0 };
  } finally {
    await release();
  }
}

/** A build's overlay on the vanilla volume (qcow2, its own virtual size). */
export async function createOverlay(
  c: VirshContext,
  o: { volume: string; backing: string; sizeBytes: number },
): Promise<void> {
  await virsh(c, [
    'vol-create-as',
    c.hypervisor.pool,
    o.volume,
    String(o.sizeBytes),
    '--format',
    'qcow2',
    '--backing-vol',
    o.backing,
    '--backing-vol-format',
    'qcow2',
  ]);
}

/** Download a volume (sparse), showing bytes, rate and ETA against its allocation. */
export async function downloadVolumeTo(
  c: VirshContext & { signal: AbortSignal },
  o: { volume: string; dest: string; progress: (text: string) => void },
): Promise<{ bytes: number; ms: number }> {
  const h = c.hypervisor;
  const total = await volumeAllocation(c, o.volume);
  const t0 = Date.now();
  const timer = setInterval(() => {
    // Sparse: the blocks written, not the apparent size.
    stat(o.dest).then(
      (st) =>
        o.progress(
          transferLine(`downloading ${o.volume} from ${h.name}`, st.blocks * 512, total, Date.now() - t0),
        ),
      () => undefined,
    );
  }, 2000);
  try {
    await virsh(c, volumeDownloadArgs(h, o.volume, o.dest).slice(4), {
      timeoutMs: 60 * 60_000,
    });
  } finally {
    clearInterval(timer);
  }
  return { bytes: total, ms: Date.now() - t0 };
}

/** A UserError for a hypervisor whose pool cannot take osbake's volumes. */
export function poolError(h: Hypervisor, detail: string): UserError {
  return new UserError(
    'E_LIBVIRT_POOL',
    `hypervisor ${h.name}: storage pool "${h.pool}" is not usable: ${detail}`,
    `list the pools with: virsh -c ${h.uri} pool-list --all (start it with pool-start), or fix hypervisors[].pool`,
  );
}
