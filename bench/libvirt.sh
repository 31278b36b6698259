#!/usr/bin/env bash
# Benchmark: osbake build debian12-base (the real default package list) with the libvirt builder
# (engine virsh) on a hypervisor reached over SSH, side by side with the Packer qemu builder on the
# same machine, in one run; both from the cached vanilla disk, boot test included. The hypervisor
# is this machine's libvirtd behind a throwaway sshd on 127.0.0.2 (its own host key, a pool of its
# own); the first libvirt build uploads the vanilla disk, the second finds it there.
# Usage (as root, after scripts/setup.sh; libvirt-daemon-system installed): bench/libvirt.sh
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /var/tmp/osbake-bench-lv-XXXXXX)"
P="$WORK/project"
POOL="osbake-bench-$$"
SSHD_PID=""
cleanup() {
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
  virsh -q pool-destroy "$POOL" >/dev/null 2>&1 || true
  virsh -q pool-undefine "$POOL" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# libvirtd and virtlogd as on a hypervisor (no systemd here), /dev/kvm as Debian's udev rule sets it.
[ -e /dev/kvm ] && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
until virsh -q list >/dev/null 2>&1; do sleep 0.5; done

mkdir -p "$WORK/hv" "$WORK/pool" /run/sshd && chmod 755 "$WORK" "$WORK/pool"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/hv/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/hv/id"
cp "$WORK/hv/id.pub" "$WORK/hv/authorized_keys"
PORT=$(( 20000 + RANDOM % 20000 ))
cat > "$WORK/hv/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.2
HostKey $WORK/hv/host_key
AuthorizedKeysFile $WORK/hv/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile $WORK/hv/sshd.pid
EOF
/usr/sbin/sshd -D -f "$WORK/hv/sshd_config" & SSHD_PID=$!
echo "[127.0.0.2]:$PORT $(cut -d' ' -f1,2 "$WORK/hv/host_key.pub")" > "$WORK/hv/known_hosts"
virsh -q pool-define-as "$POOL" dir --target "$WORK/pool" >/dev/null && virsh -q pool-start "$POOL" >/dev/null

mkdir -p "$P/images"
cp -r "$REPO/images/debian12-base" "$P/images/"
rm -f "$P/images/debian12-base/manifest.json"
{ sed -e "s|^workDir:.*|workDir: $REPO/.osbake|" -e '/^hypervisors:/d' "$REPO/osbake.yaml"
  cat <<EOF
hypervisors:
  - name: bench
    uri: qemu+ssh://root@127.0.0.2:$PORT/system
    sshKey: $WORK/hv/id
    knownHosts: $WORK/hv/known_hosts
    pool: $POOL
EOF
} > "$P/osbake.yaml"
printf 'store/\nout/\n' > "$P/.gitignore"
git -C "$P" init -q -b main && git -C "$P" add -A
git -C "$P" -c user.email=b@b -c user.name=bench commit -qm bench

now() { date +%s.%N; }
build() { # $1 label, then osbake build options
  local label="$1"; shift
  git -C "$P" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m "bench $label"
  local t0 t1; t0=$(now)
  CI=true node "$REPO/bin/osbake.js" -C "$P" build debian12-base --release bench --skip-commit "$@" \
    > "$WORK/$label.out" 2> "$WORK/$label.err" || {
    echo "| $label | FAILED | $(tail -3 "$WORK/$label.err" | tr '\n' ' ') |"
    return 0
  }
  t1=$(now)
  local extra=""
  if [[ "$label" == libvirt* ]]; then
    extra=$(jq -r '.builds[-1].custom_data | "upload \(if .vanilla_upload.uploaded then "\(.vanilla_upload.bytes / 1048576 | floor) MiB at \(.vanilla_upload.bytes / 1048576 / (.vanilla_upload.ms / 1000) | floor) MiB/s" else "none (cached on the hypervisor)" end); download \(.overlay_download.bytes / 1048576 | floor) MiB at \(.overlay_download.bytes / 1048576 / (.overlay_download.ms / 1000) | floor) MiB/s; "' "$P/images/debian12-base/manifest.json")
  fi
  printf '| %s | %.1f | %s packages; %s%s |\n' "$label" "$(echo "$t1 - $t0" | bc)" \
    "$(grep -o 'packages: [0-9]*' "$WORK/$label.out" | grep -o '[0-9]*')" "$extra" \
    "$(grep -o 'phases: .*' "$WORK/$label.out" | sed 's/phases: *//')"
  rm -rf "$P/store"
}

echo "| build | wall s | packages; transfers; osbake phases |"
echo "|---|---|---|"
build libvirt-first --hypervisor bench
build qemu --builder qemu
build libvirt-cached --hypervisor bench
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
