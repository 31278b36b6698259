#!/usr/bin/env bash
# Benchmark (issue 24, point 6): osbake's chroot build of debian12-base vs Debian's mkosi (14)
# building a comparable Debian 12 image — the same package list (osbake's vanilla packages plus
# the image's base_packages), ext4 root, EFI-bootable — cold (empty caches) and cached, one after
# the other in one run; sizes of both artifacts as each tool writes them, and both compressed the
# same way (qcow2 with zstd clusters, osbake's published form).
# osbake runs with --no-test (mkosi boots nothing) and --skip-commit.
# MKOSI_BOOTABLE=yes adds --bootable (an ESP that mkosi 14 mounts: vfat must be mountable, which
# it is not on the reference machine — FACTS); the default builds the same root without the ESP.
# ONLY=mkosi or ONLY=osbake runs one side.
# Usage (as root, after scripts/setup.sh and apt-get install mkosi): bench/mkosi.sh
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
command -v mkosi >/dev/null || { echo "apt-get install mkosi" >&2; exit 2; }
WORK="$(mktemp -d /var/tmp/osbake-bench-mkosi-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
P="$WORK/project"
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
make_image_project "$REPO" "$WORK" "$P"

# The same package list: osbake's vanilla packages + the image's base_packages.
PKGS="$(node --input-type=module -e "
import { DEBIAN_BASE_PACKAGES } from '$REPO/dist/distros/debian.js';
import { readFileSync } from 'node:fs';
import { parse } from '$REPO/node_modules/yaml/dist/index.js';
const base = parse(readFileSync('$REPO/images/debian12-base/ansible/roles/base/defaults/main.yml', 'utf8')).base_packages;
console.log([...new Set([...DEBIAN_BASE_PACKAGES, ...base])].join(','));
")"

now() { date +%s.%N; }
row() { echo "| $1 | $2 | $3 | $4 | $5 |"; }
zqcow() { # qcow2 with zstd clusters (as osbake publishes): its size
  qemu-img convert -q -c -m 1 -O qcow2 -o compression_type=zstd "$1" "$WORK/z.qcow2"
  stat -c %s "$WORK/z.qcow2"; rm -f "$WORK/z.qcow2"
}

osbake_build() { # cold|cached
  [ "$1" = cold ] && rm -rf "$WORK/osbake/cache"
  git -C "$P" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m "bench $1"
  local t0 t1; t0=$(now)
  CI=true node "$REPO/bin/osbake.js" -C "$P" build debian12-base --release bench --skip-commit \
    --builder chroot --no-test > "$WORK/osbake-$1.out" 2> "$WORK/osbake-$1.err" ||
    { row osbake "$1" FAILED - "$(tail -2 "$WORK/osbake-$1.err" | tr '\n' ' ')"; return 0; }
  t1=$(now)
  local art; art="$(ls -t "$P"/store/builds/debian12-base-*.qcow2 | head -n 1)"
  local pk; pk=$(grep -o 'packages: [0-9]*' "$WORK/osbake-$1.out" | grep -o '[0-9]*' | head -n 1)
  row osbake "$1" "$(printf %.1f "$(echo "$t1 - $t0" | bc)")" "$(stat -c %s "$art") (already zstd qcow2)" "${pk:-?} packages"
}

mkosi_build() { # cold|cached
  [ "$1" = cold ] && rm -rf "$WORK/mkosi-cache" "$WORK/mkosi-out"
  mkdir -p "$WORK/mkosi-cache" "$WORK/mkosi-out"
  local t0 t1; t0=$(now)
  (cd "$WORK" && mkosi --force --distribution debian --release bookworm \
    --mirror http://deb.debian.org/debian --format gpt_ext4 --bootable "${MKOSI_BOOTABLE:-no}" --with-network \
    --incremental --cache "$WORK/mkosi-cache" --output-dir "$WORK/mkosi-out" \
    --output "$WORK/mkosi-out/image.raw" --package "$PKGS" --hostname bench build) \
    > "$WORK/mkosi-$1.out" 2>&1 ||
    { row mkosi "$1" FAILED - "$(tail -3 "$WORK/mkosi-$1.out" | tr '\n' ' ')"; return 0; }
  t1=$(now)
  local raw="$WORK/mkosi-out/image.raw"
  local alloc; alloc=$(( $(stat -c %b "$raw") * 512 ))
  row mkosi "$1" "$(printf %.1f "$(echo "$t1 - $t0" | bc)")" \
    "raw $(stat -c %s "$raw") ($alloc allocated); zstd qcow2 $(zqcow "$raw")" "$(echo "$PKGS" | tr ',' '\n' | wc -l) packages asked"
}

echo "bench/mkosi.sh, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), mkosi $(mkosi --version | cut -d' ' -f2)"
echo
echo "| tool | caches | wall s | artifact bytes | notes |"
echo "| --- | --- | --- | --- | --- |"
if [ "${ONLY:-}" != mkosi ]; then osbake_build cold; osbake_build cached; fi
if [ "${ONLY:-}" != osbake ]; then mkosi_build cold; mkosi_build cached; fi
