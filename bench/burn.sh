#!/usr/bin/env bash
# Benchmark: writing a sparse raw image to one loop device (backed by a file on disk) with
# `dd bs=4M conv=fsync`, `bmaptool copy` and `osbake burn`, in one run. The image: by default a
# synthetic 2 GiB one (~300 MiB of data); BENCH_IMAGE=FILE uses a real image instead (raw or
# qcow2, converted to a sparse raw copy first), e.g. a debian12-base build from the store.
# Usage (as root, after scripts/setup.sh and npm run build): [BENCH_IMAGE=FILE] bench/burn.sh [ROUNDS]
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
MIB=$((1024 * 1024))

if [ -n "${BENCH_IMAGE:-}" ]; then
  # A real image: a sparse raw copy (qemu-img writes no zeros), as osbake burn would make of a qcow2.
  qemu-img convert -O raw "$BENCH_IMAGE" "$IMG"
  SIZE=$(stat -c %s "$IMG")
  EXTENTS=$(filefrag "$IMG" | sed -n 's/.*: \([0-9]*\) extents\? found/\1/p')
  DESC="$(basename "$BENCH_IMAGE") as sparse raw, $((SIZE / MIB)) MiB, in $EXTENTS extents"
else
  # A boot area, 20 large extents of 14 MiB and 200 small ones of 64 KiB, spread over 2 GiB.
  SIZE=$((2 * 1024 * 1024 * 1024))
  truncate -s "$SIZE" "$IMG"
  dd if=/dev/urandom of="$IMG" bs=1M count=1 conv=notrunc status=none
  for i in $(seq 0 19); do
    dd if=/dev/urandom of="$IMG" bs=1M count=14 seek=$((16 + i * 100)) conv=notrunc status=none
  done
  for i in $(seq 0 199); do
    dd if=/dev/urandom of="$IMG" bs=64K count=1 seek=$((i * 160 + 7)) conv=notrunc status=none
  done
  DESC="2048 MiB raw, in 221 extents (1 MiB + 20 × 14 MiB + 200 × 64 KiB)"
fi
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
SIZE_MIB=$((SIZE / MIB))
echo "## burn: sparse $SIZE_MIB MiB image to a loop device ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "Command: \`${BENCH_IMAGE:+BENCH_IMAGE=$BENCH_IMAGE }bench/burn.sh $ROUNDS\`. Image: $DESC, $((DATA / MIB)) MiB of data;"
echo "device: a loop device over a preallocated file on the"
echo "machine's disk (ext4 on virtio); image in the page cache before each run. ${ROUNDS} rounds, interleaved;"
echo "the median is shown, MiB/s = image size ($SIZE_MIB MiB) / time. Device == image after osbake burn (cmp): $identical."
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
    "$med" "$(echo "$SIZE_MIB / $med" | bc -l)" "$(echo "$med_dd / $med" | bc -l)" "$(echo "$med_bt / $med" | bc -l)" "$cpu"
done
echo
printf 'bmap creation of the same image: bmaptool create %.2f s, osbake (FIEMAP + SHA-256) %s s.\n' \
  "$t_bmaptool_create" "$osbake_bmap_s"
