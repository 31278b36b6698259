#!/usr/bin/env bash
# Benchmark: writing a sparse 2 GiB raw image (~300 MiB of data) to one loop device (backed by a
# file on disk) with `dd bs=4M conv=fsync`, `bmaptool copy` and `osbake burn`, in one run.
# Usage (as root, after scripts/setup.sh and npm run build): bench/burn.sh [ROUNDS]
# Prints a Markdown section to append to bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
WORK="$(mktemp -d /var/tmp/osbake-bench-burn-XXXXXX)"
LOOP=""
cleanup() {
  if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

IMG="$WORK/image.raw"
BACK="$WORK/device.back"
SIZE=$((2 * 1024 * 1024 * 1024))
MIB=$((1024 * 1024))

# The image: a boot area, 20 large extents of 14 MiB and 200 small ones of 64 KiB, spread over 2 GiB.
truncate -s "$SIZE" "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=1 conv=notrunc status=none
for i in $(seq 0 19); do
  dd if=/dev/urandom of="$IMG" bs=1M count=14 seek=$((16 + i * 100)) conv=notrunc status=none
done
for i in $(seq 0 199); do
  dd if=/dev/urandom of="$IMG" bs=64K count=1 seek=$((i * 160 + 7)) conv=notrunc status=none
done
sync "$IMG"
DATA=$(( $(du -B1 "$IMG" | cut -f1) ))

t_bmaptool_create0=$(date +%s.%N)
bmaptool -q create -o "$IMG.bmap" "$IMG"
t_bmaptool_create=$(echo "$(date +%s.%N) - $t_bmaptool_create0" | bc)
osbake_bmap_s=$(cd "$REPO" && node --input-type=module -e "
  const { createBmap } = await import('./dist/media/bmap.js');
  const { createNullLogger } = await import('./dist/log/logger.js');
  const t = performance.now(); await createBmap('$IMG', createNullLogger());
  console.log(((performance.now() - t) / 1000).toFixed(2));")

fallocate -l $((SIZE + 256 * MIB)) "$BACK"
LOOP=$(losetup -f --show "$BACK")

# Each run starts from the same state: backing file fully allocated, image in the page cache.
prepare() {
  fallocate -l $((SIZE + 256 * MIB)) "$BACK"
  cat "$IMG" > /dev/null
  sync
}
declare -A times cpus
run() { # $1 label, rest: command
  local label="$1"; shift
  prepare
  /usr/bin/time -f '%e %U %S' -o "$WORK/$label.time" "$@" > "$WORK/$label.out" 2>&1 ||
    { cat "$WORK/$label.out" >&2; exit 1; }
  read -r wall user sys < "$WORK/$label.time"
  times[$label]="${times[$label]:-} $wall"
  cpus[$label]="${cpus[$label]:-} $(echo "$user + $sys" | bc)"
}
OSBAKE=(env CI=true node "$REPO/bin/osbake.js" burn "$IMG" "$LOOP" --force --yes)
for r in $(seq 1 "$ROUNDS"); do
  run dd dd if="$IMG" of="$LOOP" bs=4M conv=fsync status=none
  run bmaptool bmaptool -q copy --bmap "$IMG.bmap" "$IMG" "$LOOP"
  run osbake "${OSBAKE[@]}"
  run osbake-keep-no-verify "${OSBAKE[@]}" --holes keep --no-verify
done
# The last osbake run zeroed the holes: the device must now hold the image byte for byte.
prepare
node "$REPO/bin/osbake.js" burn "$IMG" "$LOOP" --force --yes > /dev/null 2>&1
cmp -n "$SIZE" "$IMG" "$LOOP" && identical=yes || identical=NO

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
med_dd=$(echo "${times[dd]}" | median)
echo "## burn: sparse 2 GiB image to a loop device ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "Command: \`bench/burn.sh $ROUNDS\`. Image: 2 GiB raw, $((DATA / MIB)) MiB of data in 221 extents"
echo "(1 MiB + 20 × 14 MiB + 200 × 64 KiB); device: a loop device over a preallocated file on the"
echo "machine's disk (ext4 on virtio); image in the page cache before each run. ${ROUNDS} rounds, interleaved;"
echo "the median is shown, MiB/s = image size (2048 MiB) / time. Device == image after osbake burn (cmp): $identical."
echo
echo "| tool | command | wall times (s) | median (s) | MiB/s | vs dd | vs bmaptool | CPU user+sys (s, median) |"
echo "|---|---|---|---|---|---|---|---|"
med_bt=$(echo "${times[bmaptool]}" | median)
for label in dd bmaptool osbake osbake-keep-no-verify; do
  med=$(echo "${times[$label]}" | median)
  cpu=$(echo "${cpus[$label]}" | median)
  case $label in
    dd) cmd='dd bs=4M conv=fsync' ;;
    bmaptool) cmd='bmaptool copy --bmap (checks source sums, syncs)' ;;
    osbake) cmd='osbake burn --force --yes (holes zeroed by offload, read-back verify)' ;;
    osbake-keep-no-verify) cmd='osbake burn --force --yes --holes keep --no-verify (the work bmaptool does)' ;;
  esac
  printf '| %s | %s | %s | %.2f | %.0f | %.1f× | %.2f× | %.2f |\n' "$label" "$cmd" "$(echo "${times[$label]}" | xargs)" \
    "$med" "$(echo "2048 / $med" | bc -l)" "$(echo "$med_dd / $med" | bc -l)" "$(echo "$med_bt / $med" | bc -l)" "$cpu"
done
echo
printf 'bmap creation of the same image: bmaptool create %.2f s, osbake (FIEMAP + SHA-256) %s s.\n' \
  "$t_bmaptool_create" "$osbake_bmap_s"
