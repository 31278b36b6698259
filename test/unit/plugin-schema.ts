/**
 * The HCL schema of packer-plugin-libvirt's `source "libvirt"` block, transcribed from the plugin's
 * generated specs (builder/libvirt/generate.hcl2spec.go, volume/ and network/generate.hcl2spec.go,
 * and packer-plugin-sdk communicator/config.hcl2spec.go for the nested communicator block), and a
 * pure checker of a parsed block (hcl2json's JSON shape: nested blocks are arrays of objects).
 * Packer 1.6.6 cannot load the plugin, so this is how osbake checks its libvirt template here.
 */

export interface BlockSchema {
  attrs: readonly string[];
  blocks?: Readonly<Record<string, BlockSchema>>;
  required?: readonly string[];
  /** Allowed values of string attributes (documented enums). */
  values?: Readonly<Record<string, readonly string[]>>;
}

const COMMUNICATOR: BlockSchema = {
  attrs: [
    'communicator',
    'pause_before_connecting',
    'screenshot_dir',
    'ssh_host',
    'ssh_port',
    'ssh_username',
    'ssh_password',
    'ssh_keypair_name',
    'temporary_key_pair_name',
    'temporary_key_pair_type',
    'temporary_key_pair_bits',
    'ssh_ciphers',
    'ssh_clear_authorized_keys',
    'ssh_key_exchange_algorithms',
    'ssh_private_key_file',
    'ssh_certificate_file',
    'ssh_pty',
    'ssh_timeout',
    'ssh_wait_timeout',
    'ssh_agent_auth',
    'ssh_disable_agent_forwarding',
    'ssh_handshake_attempts',
    'ssh_bastion_host',
    'ssh_bastion_port',
    'ssh_bastion_agent_auth',
    'ssh_bastion_username',
    'ssh_bastion_password',
    'ssh_bastion_interactive',
    'ssh_bastion_private_key_file',
    'ssh_bastion_certificate_file',
    'ssh_file_transfer_method',
    'ssh_proxy_host',
    'ssh_proxy_port',
    'ssh_proxy_username',
    'ssh_proxy_password',
    'ssh_keep_alive_interval',
    'ssh_read_write_timeout',
    'ssh_remote_tunnels',
    'ssh_local_tunnels',
    'ssh_public_key',
    'ssh_private_key',
    'winrm_username',
    'winrm_password',
    'winrm_host',
    'winrm_no_proxy',
    'winrm_port',
    'winrm_timeout',
    'winrm_use_ssl',
    'winrm_insecure',
    'winrm_use_ntlm',
  ],
  values: { communicator: ['ssh', 'winrm', 'none'] },
};

const VOLUME_SOURCE: BlockSchema = {
  attrs: [
    'type',
    'checksum',
    'urls',
    'meta_data',
    'user_data',
    'network_config',
    'pool',
    'volume',
    'path',
    'files',
    'contents',
    'label',
  ],
  required: ['type'],
  values: { type: ['backing-store', 'cloning', 'cloud-init', 'external', 'files'] },
};

const VOLUME: BlockSchema = {
  attrs: ['pool', 'name', 'size', 'capacity', 'readonly', 'target_dev', 'bus', 'alias', 'format', 'device'],
  blocks: { source: VOLUME_SOURCE },
  values: { device: ['disk', 'floppy', 'cdrom', 'lun'] },
};

const NETWORK_INTERFACE: BlockSchema = {
  attrs: ['type', 'mac', 'alias', 'model', 'bridge', 'network', 'mode', 'dev'],
  required: ['type'],
};

const GRAPHICS: BlockSchema = {
  attrs: ['type', 'display', 'port'],
  required: ['type'],
  values: { type: ['vnc', 'sdl'] },
};

export const LIBVIRT_SOURCE_SCHEMA: BlockSchema = {
  attrs: [
    'packer_build_name',
    'packer_builder_type',
    'packer_core_version',
    'packer_debug',
    'packer_force',
    'packer_on_error',
    'packer_user_variables',
    'packer_sensitive_variables',
    'boot_keygroup_interval',
    'boot_wait',
    'boot_command',
    'key_hold_time',
    'domain_name',
    'memory',
    'vcpu',
    'cpu_mode',
    'communicator_interface',
    'artifact_volume_alias',
    'boot_devices',
    'network_address_source',
    'libvirt_uri',
    'shutdown_mode',
    'shutdown_timeout',
    'domain_type',
    'arch',
    'chipset',
    'loader_path',
    'loader_type',
    'secure_boot',
    'nvram_path',
    'nvram_template',
  ],
  blocks: {
    communicator: COMMUNICATOR,
    network_interface: NETWORK_INTERFACE,
    volume: VOLUME,
    graphics: GRAPHICS,
  },
  required: ['libvirt_uri'],
  values: {
    network_address_source: ['agent', 'lease', 'arp'],
    shutdown_mode: ['auto', 'acpi', 'guest', 'initctl', 'signal', 'paravirt'],
  },
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Problems of one parsed block against its schema ("path: what is wrong"), empty when it conforms. */
export function checkBlock(body: Record<string, unknown>, schema: BlockSchema, path: string): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    const sub = schema.blocks?.[key];
    if (sub) {
      const items = Array.isArray(value) ? value : [value];
      items.forEach((item, i) => {
        if (!isObject(item)) problems.push(`${path}.${key}[${i}]: must be a block (${key} { ... })`);
        else problems.push(...checkBlock(item, sub, `${path}.${key}[${i}]`));
      });
      continue;
    }
    if (!schema.attrs.includes(key)) {
      problems.push(`${path}.${key}: not an argument of packer-plugin-libvirt here`);
      continue;
    }
    const allowed = schema.values?.[key];
    // Only literal values can be checked; "${var.x}" is resolved by Packer.
    if (allowed && typeof value === 'string' && !value.includes('${') && !allowed.includes(value)) {
      problems.push(`${path}.${key}: "${value}" is not one of ${allowed.join(', ')}`);
    }
  }
  for (const r of schema.required ?? []) {
    if (!(r in body)) problems.push(`${path}.${r}: required`);
  }
  return problems;
}

/** Check every `source "libvirt"` block of a parsed template (hcl2json output). */
export function checkLibvirtSources(parsed: Record<string, unknown>): {
  sources: string[];
  problems: string[];
} {
  const sources: string[] = [];
  const problems: string[] = [];
  const libvirt = isObject(parsed.source) ? parsed.source.libvirt : undefined;
  if (!isObject(libvirt)) return { sources, problems: ['no source "libvirt" block'] };
  for (const [name, bodies] of Object.entries(libvirt)) {
    sources.push(name);
    for (const body of Array.isArray(bodies) ? bodies : [bodies]) {
      if (isObject(body)) problems.push(...checkBlock(body, LIBVIRT_SOURCE_SCHEMA, `source.libvirt.${name}`));
    }
  }
  return { sources, problems };
}
