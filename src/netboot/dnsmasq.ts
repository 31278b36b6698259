/**
 * `osbake netboot dnsmasq-config`: a dnsmasq configuration that adds network boot to a site
 * without touching its DHCP server — proxy DHCP (dnsmasq answers only the boot part, the site's
 * server still hands out addresses) and TFTP of the directory osbake serve --netboot keeps
 * (netboot/tftp.ts). A BIOS PXE ROM gets iPXE (undionly.kpxe), which, recognised by its option
 * 175 or its user class, gets osbake's boot script by HTTP. UEFI gets the signed chain (shim →
 * grubnetx64 → the installer's signed kernel, all by TFTP), which boots with Secure Boot enforced
 * and without it; `--uefi ipxe` gives UEFI iPXE instead (snponly.efi: faster, HTTP, but unsigned).
 * Every value is checked: nothing a user typed can add a line to the file.
 */
import { isHostIPv4, isPort } from '../config/netboot.js';
import { inSubnet, ipv4HostProblem, ipv4ToInt } from '../config/nodes.js';
import { UserError } from '../errors.js';

export interface DnsmasqOptions {
  /** The osbake server as the nodes reach it: http://HOST[:PORT]. */
  server: string;
  /** The network the nodes boot on: 10.0.0.0/24 or 10.0.0.0. */
  subnet: string;
  /** Answer on this interface only. */
  iface?: string;
  /** The TFTP root: osbake serve --netboot's (bootx64.efi, grubx64.efi, grub/, undionly.kpxe, …). */
  tftpRoot: string;
  /** What UEFI nodes load: the signed chain (shim) or iPXE. */
  uefi?: 'shim' | 'ipxe';
  /**
   * "FIRST,LAST": dnsmasq is the nodes' network's DHCP server and hands out these addresses (a
   * provisioning network of its own). Without it: proxy DHCP beside the site's server.
   */
  dhcpRange?: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function bad(what: string, value: string, hint: string): UserError {
  return new UserError('E_USAGE', `${what} ${JSON.stringify(value)} is not valid`, hint);
}

/** Check the options and return the server URL without a trailing slash and the network address (pure). */
export function checkDnsmasqOptions(o: DnsmasqOptions): {
  server: string;
  network: string;
  host: string;
  range?: { first: string; last: string; mask: string };
} {
  const m = /^http:\/\/(\d+\.\d+\.\d+\.\d+)(?::(\d{1,5}))?\/?$/.exec(o.server);
  if (
    !m ||
    !IPV4.test(m[1] as string) ||
    !isHostIPv4(m[1] as string) ||
    (m[2] !== undefined && !isPort(m[2]))
  ) {
    throw bad(
      '--server',
      o.server,
      'give the osbake server as http://IPv4[:PORT] (an address: a PXE ROM has no DNS), e.g. http://10.0.0.5:8080',
    );
  }
  const [net, bits] = o.subnet.split('/');
  if (!net || !IPV4.test(net) || (bits !== undefined && !/^([89]|[12]\d|3[0-2])$/.test(bits))) {
    throw bad('--subnet', o.subnet, 'give the nodes’ network as ADDRESS/BITS, e.g. 10.0.0.0/24');
  }
  if (o.iface !== undefined && !/^[A-Za-z0-9_.:-]{1,15}$/.test(o.iface)) {
    throw bad('--interface', o.iface, 'give an interface name like eth0 or enp3s0');
  }
  if (!/^\/[A-Za-z0-9_./+-]*$/.test(o.tftpRoot)) {
    throw bad('--tftp-root', o.tftpRoot, 'give an absolute directory path without spaces');
  }
  let range: { first: string; last: string; mask: string } | undefined;
  if (o.dhcpRange !== undefined) {
    const [first = '', last = '', extra] = o.dhcpRange.split(',');
    const prefix = Number(bits);
    const mask = 2 ** 32 - 2 ** (32 - prefix);
    // A host address of the subnet: neither its network nor (from /30 up) its broadcast address —
    // the same rules as a node's address in nodes: (config/nodes.ts).
    const inNet = (a: string) =>
      IPV4.test(a) &&
      isHostIPv4(a) &&
      inSubnet({ address: net, prefix, family: 4 }, a) &&
      ipv4HostProblem({ address: a, prefix }) === undefined;
    if (
      bits === undefined ||
      extra !== undefined ||
      !inNet(first) ||
      !inNet(last) ||
      ipv4ToInt(first) > ipv4ToInt(last)
    ) {
      throw bad(
        '--dhcp-range',
        o.dhcpRange,
        'give FIRST,LAST addresses inside --subnet ADDRESS/BITS, e.g. --subnet 10.0.0.0/24 --dhcp-range 10.0.0.100,10.0.0.199',
      );
    }
    range = { first, last, mask: [24, 16, 8, 0].map((sh) => Math.floor(mask / 2 ** sh) % 256).join('.') };
  }
  return { server: `http://${m[1]}${m[2] ? `:${m[2]}` : ''}`, network: net, host: m[1] as string, range };
}

/** The configuration file (pure). */
export function dnsmasqConfig(o: DnsmasqOptions): string {
  const { server, network, host, range } = checkDnsmasqOptions(o);
  const url = `${server}/netboot/boot.ipxe`;
  const uefiFile = o.uefi === 'ipxe' ? 'snponly.efi' : 'bootx64.efi';
  const head = [
    '# osbake netboot dnsmasq-config: network boot for osbake serve --netboot.',
    ...(range
      ? [
          `# dnsmasq is the DHCP server of the nodes' network: addresses ${range.first}-${range.last}.`,
          '# Run: dnsmasq --conf-file=THIS-FILE --no-daemon   (as root; needs UDP 67 and 69)',
        ]
      : [
          "# Proxy DHCP next to the site's own DHCP server: dnsmasq hands out no address, only the",
          "# boot file. GRUB (the Secure Boot chain's second stage) does not follow a proxy's answer",
          '# (rhboot/grub2#56): with Secure Boot nodes, use --dhcp-range on a provisioning network, or',
          "# give the site's DHCP server next-server = this machine (README: Network install).",
          '# Run: dnsmasq --conf-file=THIS-FILE --no-daemon   (as root; needs UDP 67, 69 and 4011)',
        ]),
    'port=0',
    'log-dhcp',
    ...(o.iface ? [`interface=${o.iface}`, 'bind-interfaces'] : []),
    range ? `dhcp-range=${range.first},${range.last},${range.mask},12h` : `dhcp-range=${network},proxy`,
    '# iPXE says who it is: option 175, or the user class "iPXE".',
    'dhcp-match=set:ipxe,175',
    'dhcp-userclass=set:ipxe,iPXE',
    '# A PXE ROM (not yet iPXE) loads its first file by TFTP from this machine.',
    'enable-tftp',
    `tftp-root=${o.tftpRoot}`,
    '# osbake serve --netboot fills the root: dnsmasq may start first.',
    'tftp-no-fail',
    ...(o.uefi === 'ipxe'
      ? []
      : [
          "# UEFI, with or without Secure Boot: shim (signed by the UEFI CA) → grubx64.efi (Debian's",
          "# signed grubnetx64, reads grub/grub.cfg) → the installer's signed kernel, all by TFTP.",
        ]),
  ];
  const boot = range
    ? [
        '# UEFI x86-64 firmware says so in option 93 (client architecture 7 or 9).',
        'dhcp-match=set:efi64,option:client-arch,7',
        'dhcp-match=set:efi64,option:client-arch,9',
        `dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,${host}`,
        `dhcp-boot=tag:!ipxe,tag:efi64,${uefiFile},,${host}`,
      ]
    : [
        'pxe-prompt="osbake network install",0',
        'pxe-service=tag:!ipxe,x86PC,"osbake: iPXE (BIOS)",undionly.kpxe',
        ...(o.uefi === 'ipxe'
          ? [
              'pxe-service=tag:!ipxe,BC_EFI,"osbake: iPXE (UEFI)",snponly.efi',
              'pxe-service=tag:!ipxe,X86-64_EFI,"osbake: iPXE (UEFI)",snponly.efi',
            ]
          : [
              'pxe-service=tag:!ipxe,BC_EFI,"osbake: Secure Boot chain (UEFI)",bootx64.efi',
              'pxe-service=tag:!ipxe,X86-64_EFI,"osbake: Secure Boot chain (UEFI)",bootx64.efi',
            ]),
      ];
  return [
    ...head,
    ...boot,
    "# iPXE gets osbake's script by HTTP (a boot file, not a menu: a menu would send iPXE",
    '# to PXE boot-server discovery, and it would load iPXE again).',
    `dhcp-boot=tag:ipxe,${url},,${host}`,
    '',
  ].join('\n');
}
