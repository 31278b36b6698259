/**
 * A static kickstart check for RHEL 8 / Rocky 8 (pure). pykickstart's ksvalidator is not packaged
 * in Debian 12, so osbake checks what it can without it: every command is one of pykickstart's
 * RHEL8Handler commands (pykickstart/handlers/rhel8.py), sections are known and closed by %end,
 * and an unattended install has what Anaconda would otherwise ask for.
 */

/** pykickstart RHEL8Handler.commandMap keys. */
export const RHEL8_COMMANDS: ReadonlySet<string> = new Set([
  'auth',
  'authconfig',
  'autopart',
  'autostep',
  'bootloader',
  'btrfs',
  'cdrom',
  'clearpart',
  'cmdline',
  'device',
  'deviceprobe',
  'dmraid',
  'driverdisk',
  'eula',
  'fcoe',
  'firewall',
  'firstboot',
  'graphical',
  'group',
  'halt',
  'harddrive',
  'hmc',
  'ignoredisk',
  'install',
  'iscsi',
  'iscsiname',
  'keyboard',
  'lang',
  'liveimg',
  'logging',
  'logvol',
  'mediacheck',
  'method',
  'mount',
  'multipath',
  'network',
  'nfs',
  'nvdimm',
  'ostreesetup',
  'part',
  'partition',
  'poweroff',
  'raid',
  'realm',
  'reboot',
  'repo',
  'reqpart',
  'rescue',
  'rootpw',
  'selinux',
  'services',
  'shutdown',
  'skipx',
  'snapshot',
  'sshpw',
  'sshkey',
  'text',
  'timezone',
  'updates',
  'url',
  'user',
  'vnc',
  'volgroup',
  'xconfig',
  'zerombr',
  'zfcp',
]);

/** Sections Anaconda reads in RHEL 8 kickstarts; each ends with %end. */
export const KICKSTART_SECTIONS: ReadonlySet<string> = new Set([
  '%packages',
  '%pre',
  '%pre-install',
  '%post',
  '%onerror',
  '%traceback',
  '%addon',
  '%anaconda',
]);

/** Groups of commands of which an unattended install needs (at least) one. */
const NEEDED: { what: string; any: string[] }[] = [
  { what: 'an installation source', any: ['cdrom', 'url', 'harddrive', 'nfs', 'liveimg'] },
  { what: 'a language', any: ['lang'] },
  { what: 'a keyboard layout', any: ['keyboard'] },
  { what: 'a time zone', any: ['timezone'] },
  { what: 'a root password or a user', any: ['rootpw', 'user'] },
  { what: 'a boot loader', any: ['bootloader'] },
  { what: 'partitioning', any: ['autopart', 'part', 'partition', 'reqpart', 'logvol', 'raid', 'btrfs'] },
  { what: 'what to do when done', any: ['reboot', 'poweroff', 'shutdown', 'halt'] },
  { what: 'a non-graphical mode', any: ['text', 'cmdline'] },
];

export interface KickstartSummary {
  commands: string[];
  sections: string[];
  problems: string[];
}

/** Check a kickstart file's text; problems are "line N: what is wrong". */
export function checkKickstart(text: string): KickstartSummary {
  const commands: string[] = [];
  const sections: string[] = [];
  const problems: string[] = [];
  let open: { name: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (open) {
      if (line === '%end') open = undefined;
      else if (/^%(packages|pre|pre-install|post|onerror|traceback|addon|anaconda)\b/.test(line))
        problems.push(
          `line ${n}: ${line.split(/\s/)[0]} inside ${open.name} (line ${open.line}) before its %end`,
        );
      return;
    }
    if (!line || line.startsWith('#')) return;
    if (line.startsWith('%')) {
      const name = line.split(/\s/)[0] as string;
      if (name === '%end') problems.push(`line ${n}: %end without an open section`);
      else if (name === '%include' || name === '%ksappend') commands.push(name);
      else if (!KICKSTART_SECTIONS.has(name)) problems.push(`line ${n}: unknown section ${name}`);
      else {
        sections.push(name);
        open = { name, line: n };
      }
      return;
    }
    const cmd = line.split(/\s/)[0] as string;
    if (!RHEL8_COMMANDS.has(cmd)) problems.push(`line ${n}: unknown kickstart command "${cmd}" (RHEL 8)`);
    else commands.push(cmd);
  });
  if (open) problems.push(`line ${open.line}: ${open.name} has no %end`);
  for (const need of NEEDED) {
    if (!need.any.some((c) => commands.includes(c)))
      problems.push(`no ${need.what} (${need.any.join(' | ')})`);
  }
  const modes = ['text', 'cmdline', 'graphical'].filter((c) => commands.includes(c));
  if (modes.length > 1) problems.push(`more than one display mode: ${modes.join(', ')}`);
  return { commands, sections, problems };
}

/**
 * What a kickstart's disk lacks to boot under each firmware (pure). Anaconda installs the boot
 * loader of the firmware it runs on (BIOS under Packer's QEMU), so an image that must also boot
 * on UEFI-only nodes, with or without Secure Boot, needs it all spelled out: a GPT disk label, a
 * BIOS boot partition (GRUB's core.img), an EFI System Partition on /boot/efi, and both boot
 * loaders' packages (grub2-pc; shim-x64 + grub2-efi-x64, signed for Secure Boot).
 */
export function kickstartFirmware(text: string): { bios: string[]; uefi: string[] } {
  const lines = text.split('\n').map((l) => l.trim());
  const cmd = (name: string) => lines.filter((l) => l.split(/\s/)[0] === name);
  const packages: string[] = [];
  let inPackages = false;
  for (const l of lines) {
    if (/^%packages\b/.test(l)) inPackages = true;
    else if (l === '%end') inPackages = false;
    else if (inPackages && l && !l.startsWith('#')) packages.push(l);
  }
  const parts = [...cmd('part'), ...cmd('partition')];
  const gpt = cmd('clearpart').some((l) => /--disklabel[= ]gpt\b/.test(l));
  const biosboot = parts.some((l) => /\sbiosboot\b|--fstype[= ]biosboot\b/.test(l));
  const esp = parts.some((l) => /\s\/boot\/efi\s/.test(`${l} `) && /--fstype[= ](efi|vfat)\b/.test(l));
  const bios: string[] = [];
  const uefi: string[] = [];
  // BIOS boots an MBR disk as is; on GPT, GRUB needs a BIOS boot partition. UEFI needs GPT here
  // (an ESP on an MBR disk works on some firmware, not on all).
  if (!gpt) uefi.push('a GPT disk label (clearpart --disklabel=gpt)');
  if (gpt && !biosboot) bios.push('a BIOS boot partition (part biosboot --fstype=biosboot --size=1)');
  if (!packages.includes('grub2-pc')) bios.push('grub2-pc in %packages');
  if (!esp) uefi.push('an EFI System Partition (part /boot/efi --fstype=efi)');
  for (const p of ['shim-x64', 'grub2-efi-x64']) if (!packages.includes(p)) uefi.push(`${p} in %packages`);
  return { bios, uefi };
}
