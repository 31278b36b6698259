/** Build slots on a hypervisor (hypervisors[].slots), kept as locks on this machine. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock } from '../../config/lock.js';
import type { Hypervisor } from '../../config/project.js';
import { UserError } from '../../errors.js';

/**
 * One of the hypervisor's build slots (hypervisors[].slots), as a lock on this machine: two osbake
 * processes here never run more builds on one hypervisor than it has slots. Waits for a free one.
 */
export async function acquireSlot(
  h: Hypervisor,
  o: { lockDir: string; signal: AbortSignal; progress: (t: string) => void; waitMs: number },
): Promise<{ slot: number; release: () => Promise<void> }> {
  await mkdir(o.lockDir, { recursive: true });
  const deadline = Date.now() + o.waitMs;
  let told = false;
  for (;;) {
    for (let slot = 0; slot < h.slots; slot++) {
      try {
        const release = await acquireLock(join(o.lockDir, `${h.name}.slot-${slot}`), {
          what: `build slot ${slot + 1} of ${h.slots} on ${h.name}`,
          waitMs: 0,
          staleMs: 60_000,
        });
        return { slot, release };
      } catch (err) {
        if ((err as { code?: string }).code !== 'E_LOCKED') throw err;
      }
    }
    if (o.signal.aborted) throw o.signal.reason;
    if (Date.now() > deadline) {
      throw new UserError(
        'E_LOCKED',
        `every build slot on ${h.name} (${h.slots}) stayed busy`,
        'other osbake builds on this machine use the hypervisor; wait, or raise hypervisors[].slots',
      );
    }
    if (!told) o.progress(`waiting for a free build slot on ${h.name} (${h.slots} in use)`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}
