/**
 * The libvirt builder leaves its artifact as a volume on the hypervisor (Packer's manifest then has
 * "files": null and artifact_id = the volume key). osbake downloads it into the work directory so
 * that post-process, publish and record treat it like a local build's qcow2.
 */
import { stat } from 'node:fs/promises';
import type { Hypervisor } from '../../config/project.js';
import { run } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';
import { ByteProgress } from '../../log/progress.js';
import { virshArgs } from './preflight.js';

/** `virsh vol-download` of the artifact volume (pure). */
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

/** Download the artifact volume to dest, showing bytes, rate and ETA against its allocation. */
export async function downloadVolume(o: {
  hypervisor: Hypervisor;
  volume: string;
  dest: string;
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const h = o.hypervisor;
  const info = await run(virshArgs(h, ['vol-info', '--bytes', '--pool', h.pool, o.volume]), {
    log: o.log,
    signal: o.signal,
  });
  const { allocation } = parseVolInfoBytes(info.stdout);
  const bar = new ByteProgress();
  bar.start(`downloading ${o.volume} from ${h.name}`, allocation);
  let seen = 0;
  const timer = setInterval(() => {
    stat(o.dest)
      .then((s) => {
        const used = s.blocks * 512;
        if (used > seen) bar.add(used - seen);
        seen = Math.max(seen, used);
      })
      .catch(() => undefined);
  }, 1000);
  try {
    await run(volumeDownloadArgs(h, o.volume, o.dest), { log: o.log, signal: o.signal });
  } finally {
    clearInterval(timer);
    bar.end();
  }
}
