#!/usr/bin/env bash
# Idempotent set-up for osbake on Debian 12: system packages, npm dependencies, compiled CLI.
# Run as root (osbake attaches loop devices and runs mmdebstrap in root mode).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  packer qemu-system-x86 qemu-utils mmdebstrap ansible bmap-tools
  extlinux syslinux-common fdisk util-linux mount e2fsprogs
  openssh-client git zstd rsync ca-certificates apt-utils debian-archive-keyring
  rpm createrepo-c dnf xz-utils gpg
  sqlite3 db5.3-util
  libvirt-clients libvirt-daemon-system openssh-server
  # tests of osbake serve / publish (a throwaway sshd, headless Chromium) and bench/serve.sh (nginx, wrk)
  chromium nginx-light wrk curl
  grub-efi-amd64-bin grub-common grub-pc-bin mtools dosfstools cpio ovmf busybox-static
  # osbake serve --netboot: the dnsmasq proxy-DHCP test and the iPXE binaries dnsmasq-config points at
  dnsmasq-base ipxe
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (sudo $0): osbake needs loop devices and mmdebstrap --mode=root" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "setup: osbake needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

stamp=node_modules/.osbake-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
npm run --silent build
echo "setup: ready ($(packer version | head -1), $(qemu-system-x86_64 --version | head -1), node $(node --version))"
