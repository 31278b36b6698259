/**
 * What osbake defines on a hypervisor (pure): the build VM's domain XML and the names of its
 * volumes. Every domain carries an <osbake:build> metadata element (build id, image, the volumes
 * it uses, the machine and process that made it) so that `osbake clean --hypervisor` can tell
 * osbake's leftovers from everything else on the host; volumes are named `osbake-…` and are only
 * ever removed when a domain's metadata or osbake's own naming says they are osbake's.
 */
import { XMLParser } from 'fast-xml-parser';
import { FW_CFG_KEY_NAME } from '../../distros/vanilla-overlay.js';

export const OSBAKE_NS = 'https://osbake.dev/libvirt/1';

/** The cached vanilla disk on a hypervisor: one volume per content hash. */
export function vanillaVolumeName(sha256: string): string {
  return `osbake-vanilla-${sha256.slice(0, 16)}.qcow2`;
}

/** The empty volume that says the vanilla volume of the same hash was uploaded whole. */
export function vanillaMarkerName(sha256: string): string {
  return `osbake-vanilla-${sha256.slice(0, 16)}.complete`;
}

/** A build's overlay volume (backed by the vanilla volume). */
export function overlayVolumeName(buildId: string): string {
  return `osbake-build-${buildId}.qcow2`;
}

export function domainName(buildId: string): string {
  return `osbake-build-${buildId}`;
}

/** Does the volume name follow osbake's naming (something osbake made)? */
export function isOsbakeVolume(name: string): boolean {
  return /^osbake-(build-[A-Za-z0-9_-]+\.qcow2|vanilla-[0-9a-f]{16}\.(qcow2|complete))$/.test(name);
}

/** Where virtlogd writes a build VM's serial console on the hypervisor. */
export function consoleLogPath(buildId: string): string {
  return `/var/log/libvirt/qemu/${domainName(buildId)}.serial.log`;
}

/** Did `virsh create` fail because the forwarded port is taken on the hypervisor? */
export function isPortClash(lines: readonly string[]): boolean {
  return lines.some((l) =>
    /host forwarding rule|Address already in use|could not set up host forwarding/i.test(l),
  );
}

/** Does `virsh domstate` say the domain no longer exists? */
export function isNoDomain(lines: readonly string[]): boolean {
  return lines.some((l) => /failed to get domain|Domain not found|no domain with matching name/i.test(l));
}

export interface DomainMeta {
  buildId: string;
  image: string;
  /** Volumes of this build (removed with the domain). */
  volumes: string[];
  /** The build machine's hostname and osbake's pid there (a live build is never cleaned). */
  machine: string;
  pid: number;
  /** ISO time of creation. */
  created: string;
}

export interface DomainSpec {
  name: string;
  type: 'kvm' | 'qemu';
  memoryMiB: number;
  cpus: number;
  pool: string;
  volume: string;
  /** The build key (one line), given to the guest through fw_cfg. */
  authorizedKey: string;
  /** Port on the hypervisor's 127.0.0.1 forwarded to the guest's SSH. */
  sshPort: number;
  /** File on the hypervisor that virtlogd writes the serial console to. */
  consoleLog: string;
  meta: DomainMeta;
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/**
 * The build VM: q35, the overlay volume on virtio, the build key through fw_cfg (the vanilla disk
 * installs it at boot), user-mode networking with the guest's SSH forwarded to the hypervisor's
 * loopback only (libvirt has no element for hostfwd: qemu:commandline, bus address given so it
 * cannot collide with libvirt's own devices), serial console logged by virtlogd, no graphics.
 */
export function domainXml(d: DomainSpec): string {
  const e = xmlEscape;
  const m = d.meta;
  return `<domain type='${d.type}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${e(d.name)}</name>
  <metadata>
    <osbake:build xmlns:osbake='${OSBAKE_NS}' id='${e(m.buildId)}' image='${e(m.image)}' volumes='${e(m.volumes.join(' '))}' machine='${e(m.machine)}' pid='${m.pid}' created='${e(m.created)}'/>
  </metadata>
  <memory unit='MiB'>${d.memoryMiB}</memory>
  <vcpu>${d.cpus}</vcpu>
  <sysinfo type='fwcfg'>
    <entry name='${FW_CFG_KEY_NAME}'>${e(d.authorizedKey.trim())}</entry>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/></features>
  ${d.type === 'kvm' ? "<cpu mode='host-passthrough'/>" : "<cpu mode='maximum'/>"}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source pool='${e(d.pool)}' volume='${e(d.volume)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'>
      <log file='${e(d.consoleLog)}' append='off'/>
    </serial>
    <console type='pty'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=osbake0,hostfwd=tcp:127.0.0.1:${d.sshPort}-:22'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=osbake0,bus=pcie.0,addr=0x10'/>
  </qemu:commandline>
</domain>
`;
}

/**
 * The osbake metadata of a domain: `virsh metadata DOMAIN --uri OSBAKE_NS` (the element alone, as
 * libvirt re-serialises it) or the whole `dumpxml`; undefined when the domain is not osbake's.
 */
export function parseDomainMeta(xml: string): DomainMeta | undefined {
  let doc: unknown;
  try {
    doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', removeNSPrefix: true }).parse(
      xml,
    );
  } catch {
    return undefined;
  }
  const root = doc as Record<string, unknown>;
  const domain = root.domain as Record<string, unknown> | undefined;
  const metadata = domain?.metadata as Record<string, unknown> | undefined;
  const el = (root.build ?? metadata?.build) as Record<string, unknown> | undefined;
  if (!el || typeof el !== 'object') return undefined;
  const str = (k: string) => (typeof el[k] === 'string' ? (el[k] as string) : undefined);
  const buildId = str('id');
  const image = str('image');
  const pid = Number(str('pid'));
  if (!buildId || !image || !Number.isSafeInteger(pid)) return undefined;
  return {
    buildId,
    image,
    volumes: (str('volumes') ?? '').split(' ').filter(isOsbakeVolume),
    machine: str('machine') ?? '',
    pid,
    created: str('created') ?? '',
  };
}
