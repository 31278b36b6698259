/**
 * Which accelerator a hypervisor's build VMs get: KVM only when a probe guest really runs under it
 * there (as osbake decides for its own QEMU: /dev/kvm can be offered while guests hang), else TCG.
 * The probe is a 512-byte boot sector that exits QEMU through isa-debug-exit; libvirt then drops
 * the transient domain. The answer is cached for a week per hypervisor URI.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically } from '../../config/atomic.js';
import { ProcessError } from '../../errors.js';
import { probeBootSector } from '../accel.js';
import { OSBAKE_NS, xmlEscape } from './domain.js';
import { deleteVolume, type VirshContext, virsh } from './virsh.js';

export interface HypervisorAccel {
  accelerator: 'kvm' | 'tcg';
  reason: string;
}

const CACHE_MS = 7 * 24 * 3600_000;

/** The probe guest's domain: KVM, the boot sector on SATA, isa-debug-exit (pure). */
export function probeDomainXml(name: string, pool: string, volume: string): string {
  const e = xmlEscape;
  return `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${e(name)}</name>
  <metadata>
    <osbake:build xmlns:osbake='${OSBAKE_NS}' id='${e(name)}' image='kvm-probe' volumes='${e(volume)}' machine='${e(hostname())}' pid='${process.pid}' created='${new Date().toISOString()}'/>
  </metadata>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='${e(pool)}' volume='${e(volume)}'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-device'/>
    <qemu:arg value='isa-debug-exit,iobase=0xf4,iosize=0x04'/>
  </qemu:commandline>
</domain>
`;
}

async function probe(c: VirshContext & { signal: AbortSignal }): Promise<HypervisorAccel> {
  const h = c.hypervisor;
  const caps = await virsh(c, ['domcapabilities', '--virttype', 'kvm'], { okCodes: [1] });
  if (caps.exitCode !== 0) return { accelerator: 'tcg', reason: `${h.name} offers no KVM: using TCG (slow)` };
  const id = randomBytes(4).toString('hex');
  const name = `osbake-probe-${id}`;
  const volume = `osbake-build-probe${id}.qcow2`;
  const dir = await mkdtemp(join(tmpdir(), 'osbake-probe-'));
  let made = false;
  try {
    const sector = join(dir, 'probe.img');
    await writeFile(sector, probeBootSector());
    await virsh(c, ['vol-create-as', h.pool, volume, '512', '--format', 'raw']);
    made = true;
    await virsh(c, ['vol-upload', '--pool', h.pool, volume, sector]);
    await writeFile(join(dir, 'probe.xml'), probeDomainXml(name, h.pool, volume));
    try {
      await virsh(c, ['create', join(dir, 'probe.xml')], { what: 'create (KVM probe guest)' });
    } catch (err) {
      if (!(err instanceof ProcessError)) throw err;
      return { accelerator: 'tcg', reason: `a KVM probe guest did not start on ${h.name}: using TCG (slow)` };
    }
    for (let i = 0; i < 20; i++) {
      const s = await virsh(c, ['domstate', name], { okCodes: [1] });
      if (s.exitCode !== 0) return { accelerator: 'kvm', reason: `a KVM probe guest ran on ${h.name}` };
      await new Promise((r) => setTimeout(r, 500));
    }
    await virsh({ hypervisor: h, log: c.log }, ['destroy', name], { okCodes: [1] });
    return { accelerator: 'tcg', reason: `a KVM probe guest did not run on ${h.name}: using TCG (slow)` };
  } finally {
    if (made) await deleteVolume({ hypervisor: h, log: c.log }, volume).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

export async function chooseHypervisorAccelerator(
  c: VirshContext & { signal: AbortSignal },
  o: { cacheDir: string; progress: (text: string) => void },
): Promise<HypervisorAccel> {
  const h = c.hypervisor;
  if (h.accelerator === 'tcg') return { accelerator: 'tcg', reason: 'TCG set in hypervisors[].accelerator' };
  if (h.accelerator === 'kvm') return { accelerator: 'kvm', reason: 'KVM set in hypervisors[].accelerator' };
  const file = join(o.cacheDir, `${h.name}.accel.json`);
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as HypervisorAccel & { uri: string; at: number };
    if (cached.uri === h.uri && Date.now() - cached.at < CACHE_MS && /^(kvm|tcg)$/.test(cached.accelerator)) {
      return {
        accelerator: cached.accelerator,
        reason: `${cached.reason} (probed ${new Date(cached.at).toISOString().slice(0, 10)})`,
      };
    }
  } catch {
    // no answer cached yet
  }
  o.progress(`probing KVM on ${h.name}`);
  const a = await probe(c);
  await mkdir(o.cacheDir, { recursive: true });
  await writeFileAtomically(file, `${JSON.stringify({ ...a, uri: h.uri, at: Date.now() })}\n`);
  return a;
}
