/**
 * Files every vanilla disk carries: DHCP on the first NIC, SSH host keys made at first boot,
 * and root's authorized key for the build read from QEMU's fw_cfg (so each build has its own key
 * while the vanilla disk stays cached). On hardware without fw_cfg the key unit does nothing.
 */

export interface OverlayFile {
  content: string;
  mode: number;
}

export const FW_CFG_KEY_NAME = 'opt/osbake/authorized_keys';

export const VANILLA_SERVICES = [
  'systemd-networkd.service',
  'systemd-resolved.service',
  'osbake-ssh-hostkeys.service',
  'osbake-fwcfg-keys.service',
];

export const VANILLA_OVERLAY: Record<string, OverlayFile> = {
  'etc/systemd/network/80-osbake-dhcp.network': {
    mode: 0o644,
    content: '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n',
  },
  'etc/systemd/system/osbake-ssh-hostkeys.service': {
    mode: 0o644,
    content: [
      '[Unit]',
      'Description=Generate SSH host keys on first boot',
      'Before=ssh.service',
      'ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key',
      '',
      '[Service]',
      'Type=oneshot',
      'ExecStart=/usr/bin/ssh-keygen -A',
      'RemainAfterExit=yes',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  },
  'usr/local/sbin/osbake-fwcfg-keys': {
    mode: 0o755,
    content: [
      '#!/bin/sh',
      '# Install the build key that osbake passes through QEMU fw_cfg (absent on real hardware).',
      'modprobe qemu_fw_cfg 2>/dev/null || true',
      `f=/sys/firmware/qemu_fw_cfg/by_name/${FW_CFG_KEY_NAME}/raw`,
      '[ -r "$f" ] || exit 0',
      'install -d -m 700 /root/.ssh',
      'cat "$f" > /root/.ssh/authorized_keys',
      'chmod 600 /root/.ssh/authorized_keys',
      '',
    ].join('\n'),
  },
  'etc/systemd/system/osbake-fwcfg-keys.service': {
    mode: 0o644,
    content: [
      '[Unit]',
      'Description=Install the SSH key given by the hypervisor (QEMU fw_cfg)',
      'Before=ssh.service',
      '',
      '[Service]',
      'Type=oneshot',
      'ExecStart=/usr/local/sbin/osbake-fwcfg-keys',
      'RemainAfterExit=yes',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  },
  'etc/ssh/sshd_config.d/osbake.conf': {
    mode: 0o644,
    content: 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n',
  },
};
