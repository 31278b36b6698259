#!/usr/bin/env bash
# Benchmark: network installs (osbake serve --netboot, 1, 2 and 3 nodes at once) against a stick
# install of the same release, in one run. Each install is a QEMU VM (SeaBIOS, TCG here: no KVM)
# with a blank 10 GiB disk; the time is from QEMU's start to its power-off after
# "OSBAKE-INSTALL: OK" on the serial console. Per node: seconds and payload MB/s (the image's data
# bytes over the whole install, boot included).
# Usage (as root, after scripts/setup.sh): bench/netboot.sh [BASE_QCOW2]
#   BASE_QCOW2: release R's image (default: the cached vanilla disk in .osbake/cache/vanilla/).
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${1:-$(ls "$REPO"/.osbake/cache/vanilla/*.qcow2 | head -1)}"
WORK="$(mktemp -d /var/tmp/osbake-bench-netboot-XXXXXX)"
SERVE_PID=''
cleanup() {
  [ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  pkill -f "$WORK" 2>/dev/null || true
  mountpoint -q "$WORK/mnt" 2>/dev/null && umount "$WORK/mnt"
  rm -rf "$WORK"
}
trap cleanup EXIT
P="$WORK/project"
mkdir -p "$WORK/mnt"
MACS=(52:54:00:be:00:01 52:54:00:be:00:02 52:54:00:be:00:03)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
{
  echo 'netboot:'
  echo '  unknown: refuse'
  echo '  nodes:'
  for i in 0 1 2; do
    printf '    "%s":\n      hostname: bench%s\n      target: vda\n      then: poweroff\n' "${MACS[$i]}" "$((i + 1))"
  done
} | make_bench_project "$REPO" "$BASE" "$P"
osbake() { CI=true OSBAKE_LOG_DIR="$WORK/logs" node "$REPO/bin/osbake.js" -C "$P" "$@"; }
echo "bench: building the usb-installer of release bench" >&2
osbake build usb-installer --release bench --skip-commit > "$WORK/build.out" 2>&1 || { tail -20 "$WORK/build.out" >&2; exit 1; }
osbake release bench > /dev/null
STICK="$(ls "$P"/store/builds/usb-installer-bench-*.raw | head -1)"
DATA_BYTES="$(node -e 'const m=require(process.argv[1]); console.log(m.builds.at(-1).custom_data.installer.payload_data_bytes)' "$P/images/usb-installer/manifest.json")"

now() { date +%s.%N; }
# One install VM: $1 name, then QEMU arguments; prints the seconds to power-off, or FAIL.
install_vm() {
  local name="$1"; shift
  local t0 t1
  qemu-img create -q -f qcow2 "$WORK/$name.qcow2" 10G
  t0=$(now)
  timeout 1500 qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -display none -nodefaults -no-user-config -no-reboot \
    "$@" -serial "file:$WORK/$name.serial" || true
  t1=$(now)
  if grep -q 'OSBAKE-INSTALL: OK' "$WORK/$name.serial"; then echo "$t1 - $t0" | bc; else echo FAIL; fi
}
row() { # mode nodes seconds...
  local mode="$1" n="$2"; shift 2
  local times="" rates=""
  for s in "$@"; do
    times+="${times:+ / }$(printf '%.0f' "$s" 2>/dev/null || echo "$s")"
    rates+="${rates:+ / }$(echo "$DATA_BYTES / $s / 1000000" | bc -l 2>/dev/null | xargs printf '%.1f' 2>/dev/null || echo -)"
  done
  echo "| $mode | $n | $times | $rates |"
}

echo "| install | nodes at once | seconds to OSBAKE-INSTALL: OK (each) | payload MB/s per node |"
echo "|---|---|---|---|"
# The stick: a copy with installer.conf (unattended), the target a second virtio disk.
cp --sparse=always "$STICK" "$WORK/stick.raw"
OFF=$(( $(sfdisk --json "$WORK/stick.raw" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).partitiontable.partitions[1].start))') * 512 ))
mount -o loop,offset=$OFF "$WORK/stick.raw" "$WORK/mnt"
printf 'target=/dev/vdb\nhostname=stick1\nthen=poweroff\nonerror=poweroff\n' > "$WORK/mnt/installer.conf"
umount "$WORK/mnt"
s=$(install_vm stick -drive "file=$WORK/stick.raw,if=virtio,format=raw" -drive "file=$WORK/stick.qcow2,if=virtio,format=qcow2")
row "stick (SeaBIOS)" 1 "$s"
rm -f "$WORK"/stick.qcow2

# The network: one server (nginx sends the files), N VMs at once.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# node itself in the background (not a function in a subshell): $! is the server, SIGTERM stops it.
CI=true OSBAKE_LOG_DIR="$WORK/logs" node "$REPO/bin/osbake.js" -C "$P" serve --netboot bench --port "$PORT" --engine nginx \
  > "$WORK/serve.out" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 300); do grep -q 'netboot: nodes boot' "$WORK/serve.out" && break; sleep 1; done
grep -q 'netboot: nodes boot' "$WORK/serve.out" || { cat "$WORK/serve.out" >&2; exit 1; }
for n in 1 2 3; do
  osbake netboot reinstall "${MACS[@]}" > /dev/null
  pids=()
  for i in $(seq 0 $((n - 1))); do
    install_vm "net$n-$i" \
      -netdev "user,id=n0,bootfile=http://10.0.2.2:$PORT/netboot/boot.ipxe" \
      -device "virtio-net-pci,netdev=n0,mac=${MACS[$i]},bootindex=0" \
      -drive "file=$WORK/net$n-$i.qcow2,if=none,id=t,format=qcow2" -device virtio-blk-pci,drive=t,bootindex=1 \
      > "$WORK/net$n-$i.time" &
    pids+=($!)
  done
  wait "${pids[@]}"
  times=()
  for i in $(seq 0 $((n - 1))); do times+=("$(cat "$WORK/net$n-$i.time")"); done
  row "network (SeaBIOS, iPXE)" "$n" "${times[@]}"
  rm -f "$WORK"/net"$n"-*.qcow2
done
echo
echo "payload: $DATA_BYTES data bytes; $(nproc) cores; every VM -accel tcg -smp 1 -m 1024 (no KVM)"
