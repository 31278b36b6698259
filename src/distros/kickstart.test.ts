import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKickstart, kickstartFirmware } from './kickstart.js';

const MINIMAL = `text
cdrom
lang en_US.UTF-8
keyboard us
timezone UTC --utc
rootpw --lock --iscrypted locked
bootloader --location=mbr
autopart
reboot
%packages
@core
%end
`;

describe('checkKickstart', () => {
  it('accepts a minimal unattended kickstart', () => {
    const r = checkKickstart(MINIMAL);
    expect(r.problems).toEqual([]);
    expect(r.sections).toEqual(['%packages']);
  });

  it('accepts images/rocky8-base/http/ks.cfg', () => {
    const ks = readFileSync(join(__dirname, '../../images/rocky8-base/http/ks.cfg'), 'utf8');
    const r = checkKickstart(ks);
    expect(r.problems).toEqual([]);
    expect(r.commands).toEqual(expect.arrayContaining(['text', 'cdrom', 'reboot', 'bootloader', 'part']));
    expect(r.commands).not.toContain('url');
    expect(r.commands).not.toContain('repo');
    expect(r.sections).toEqual(['%packages', '%post']);
  });

  it.each([
    [MINIMAL.replace('cdrom', 'cdrum'), /line 2: unknown kickstart command "cdrum"/],
    [MINIMAL.replace('%end\n', ''), /line 10: %packages has no %end/],
    [MINIMAL.replace('%packages', '%packagez'), /unknown section %packagez/],
    [MINIMAL.replace('reboot\n', ''), /no what to do when done/],
    [MINIMAL.replace('text\n', 'graphical\n'), /no a non-graphical mode/],
    [MINIMAL.replace('cdrom\n', ''), /no an installation source/],
    [`${MINIMAL}%end\n`, /%end without an open section/],
    [MINIMAL.replace('@core\n', '@core\n%post\n'), /%post inside %packages/],
  ])('reports %#', (ks, re) => {
    expect(checkKickstart(ks).problems.join('\n')).toMatch(re);
  });
});

describe('kickstartFirmware', () => {
  it('finds images/rocky8-base/http/ks.cfg bootable under BIOS and UEFI (Secure Boot: signed shim)', () => {
    const ks = readFileSync(join(__dirname, '../../images/rocky8-base/http/ks.cfg'), 'utf8');
    expect(kickstartFirmware(ks)).toEqual({ bios: [], uefi: [] });
  });

  it('asks a GPT kickstart for a BIOS boot partition', () => {
    const ks = MINIMAL.replace('autopart', 'clearpart --all --disklabel=gpt\npart / --grow').replace(
      '@core',
      '@core\ngrub2-pc',
    );
    expect(kickstartFirmware(ks).bios).toEqual([
      'a BIOS boot partition (part biosboot --fstype=biosboot --size=1)',
    ]);
  });

  it('says what an MBR kickstart lacks for each firmware', () => {
    const r = kickstartFirmware(
      MINIMAL.replace('autopart', 'clearpart --all --disklabel=msdos\npart / --grow'),
    );
    expect(r.bios).toEqual(['grub2-pc in %packages']);
    expect(r.uefi).toEqual([
      'a GPT disk label (clearpart --disklabel=gpt)',
      'an EFI System Partition (part /boot/efi --fstype=efi)',
      'shim-x64 in %packages',
      'grub2-efi-x64 in %packages',
    ]);
  });
});
