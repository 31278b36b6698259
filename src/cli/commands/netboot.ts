import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerNetboot(program: Command): void {
  const netboot = program
    .command('netboot')
    .description(
      'network installs served by osbake serve --netboot: nodes, reinstall, dnsmasq configuration',
    );
  const projectDir = () => program.opts<GlobalOptions>().project ?? process.cwd();
  netboot
    .command('status')
    .alias('nodes')
    .description(
      'every node: MAC, name, state (booted, writing N %, verified, done, failed), payload bytes it fetched, how long the install took, its last log line',
    )
    .option('--json', 'as JSON (with the last 40 log lines and every state change)')
    .action(async (opts: { json?: boolean }) => {
      const { runNetbootStatus } = await import('../../netboot/run-netboot.js');
      await runNetbootStatus({ projectDir: projectDir(), ...opts });
    });
  netboot
    .command('reinstall')
    .description(
      'install these nodes again at their next network boot (a node that is done boots from its disk)',
    )
    .argument('<mac...>', 'MAC addresses (any spelling)')
    .action(async (macs: string[]) => {
      const { runNetbootReinstall } = await import('../../netboot/run-netboot.js');
      await runNetbootReinstall({ projectDir: projectDir(), macs });
    });
  netboot
    .command('dnsmasq-config')
    .description(
      "print a dnsmasq configuration (proxy DHCP + TFTP of osbake serve --netboot's directory: iPXE for BIOS, the signed shim → GRUB chain for UEFI and Secure Boot) that sends booting nodes to the server, beside the site's own DHCP server",
    )
    .requiredOption('--server <url>', 'the osbake server as nodes reach it: http://IPv4[:PORT]')
    .requiredOption('--subnet <net>', "the nodes' network, e.g. 10.0.0.0/24")
    .option('--interface <name>', 'answer on this interface only')
    .option(
      '--tftp-root <dir>',
      "the TFTP root (default: the project's .osbake/netboot/tftp, which osbake serve --netboot fills)",
    )
    .option(
      '--dhcp-range <first,last>',
      "be the nodes' network's DHCP server with these addresses (a provisioning network; Secure Boot nodes need it or the site DHCP's next-server: GRUB ignores proxy DHCP) instead of proxy DHCP beside the site's",
    )
    .option(
      '--uefi <loader>',
      'what UEFI nodes load: shim (signed chain, Secure Boot or not) or ipxe',
      'shim',
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  osbake netboot dnsmasq-config --server http://10.0.0.5:8080 --subnet 10.0.0.0/24 > /etc/dnsmasq.d/osbake.conf',
        '  dnsmasq --conf-file=osbake.conf --no-daemon     (as root, on the nodes’ network)',
      ].join('\n'),
    )
    .action(
      async (opts: {
        server: string;
        subnet: string;
        interface?: string;
        tftpRoot?: string;
        uefi: string;
        dhcpRange?: string;
      }) => {
        const { runDnsmasqConfig } = await import('../../netboot/run-netboot.js');
        await runDnsmasqConfig({
          projectDir: projectDir(),
          server: opts.server,
          subnet: opts.subnet,
          tftpRoot: opts.tftpRoot,
          uefi: opts.uefi,
          ...(opts.dhcpRange ? { dhcpRange: opts.dhcpRange } : {}),
          ...(opts.interface ? { iface: opts.interface } : {}),
        });
      },
    );
}
