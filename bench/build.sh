#!/usr/bin/env bash
# Benchmark: osbake build debian12-base with the chroot builder (no VM) and with the Packer qemu
# builder (the seed's way), same image, same inputs, same machine, in one run; each cold (the
# vanilla disk bootstrapped with mmdebstrap) and cached (vanilla disk reused). Boot test included
# in every build (osbake boots each image it builds).
# Usage (as root, after scripts/setup.sh): bench/build.sh [ROUNDS] — default 3.
#   PACKER_ROUNDS=N runs the Packer builds in the first N rounds only (default: every round; a
#   Packer build of debian12-base takes 12-16 minutes under TCG).
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
PACKER_ROUNDS="${PACKER_ROUNDS:-$ROUNDS}"
WORK="$(mktemp -d /var/tmp/osbake-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
P="$WORK/project"
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
make_image_project "$REPO" "$WORK" "$P"

now() { date +%s.%N; }
declare -A SUM COUNT
build() { # $1 builder, $2 cold|cached, $3 round
  [ "$2" = cold ] && rm -rf "$WORK/osbake/cache"
  git -C "$P" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m "bench $1 $2 $3"
  local t0 t1 label="$1-$2-$3"
  t0=$(now)
  CI=true node "$REPO/bin/osbake.js" -C "$P" build debian12-base --release bench --skip-commit \
    --builder "$1" > "$WORK/$label.out" 2> "$WORK/$label.err" || {
    echo "| $1 | $2 | $3 | FAILED | $(tail -3 "$WORK/$label.err" | tr '\n' ' ') |"
    return 0
  }
  t1=$(now)
  local wall; wall=$(echo "$t1 - $t0" | bc)
  local phases; phases=$(grep -o 'phases: .*' "$WORK/$label.out" | sed 's/phases: *//')
  local pkgs; pkgs=$(grep -o 'packages: [0-9]*' "$WORK/$label.out" | grep -o '[0-9]*')
  printf '| %s | %s | %s | %.1f | %s packages; %s |\n' "$1" "$2" "$3" "$wall" "$pkgs" "$phases"
  SUM[$1-$2]=$(echo "${SUM[$1-$2]:-0} + $wall" | bc)
  COUNT[$1-$2]=$(( ${COUNT[$1-$2]:-0} + 1 ))
  rm -rf "$P/store"
}

echo "| builder | vanilla | round | wall s | packages; osbake phases |"
echo "|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
  if [ "$r" -le "$PACKER_ROUNDS" ]; then build qemu cold "$r"; fi
  build chroot cold "$r"
  build chroot cached "$r"
  if [ "$r" -le "$PACKER_ROUNDS" ]; then build qemu cached "$r"; fi
done
echo
echo "| builder | vanilla | mean wall s | runs |"
echo "|---|---|---|---|"
for k in chroot-cold chroot-cached qemu-cold qemu-cached; do
  [ -n "${COUNT[$k]:-}" ] || continue
  printf '| %s | %s | %.1f | %s |\n' "${k%-*}" "${k#*-}" "$(echo "${SUM[$k]} / ${COUNT[$k]}" | bc -l)" "${COUNT[$k]}"
done
for m in cold cached; do
  if [ -n "${COUNT[chroot-$m]:-}" ] && [ -n "${COUNT[qemu-$m]:-}" ]; then
    printf 'speed-up %s: %.1f× (Packer qemu mean / chroot mean)\n' "$m" \
      "$(echo "(${SUM[qemu-$m]} / ${COUNT[qemu-$m]}) / (${SUM[chroot-$m]} / ${COUNT[chroot-$m]})" | bc -l)"
  fi
done
echo "machine: $(nproc) cores, $(grep -c -E 'vmx|svm' /proc/cpuinfo || true) CPU flags with vmx/svm; $(date -u +%Y-%m-%dT%H:%MZ)"
