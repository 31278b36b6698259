#!/usr/bin/env bash
# Benchmark: cold osbake build, cached osbake build, and the same Packer template by hand, in one run.
# Usage (as root, after scripts/setup.sh): bench/build.sh [REPS]   — REPS pairs of cached/by-hand runs.
# BENCH_VANILLA_FROM=DIR (e.g. .osbake/cache/vanilla) hard-links the vanilla disks cached there
# into the bench's cache and skips the cold run (the cached run says whether one matched).
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
REPS="${1:-1}"
WORK="$(mktemp -d /var/tmp/osbake-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
P="$WORK/project"
mkdir -p "$P/images"
cp -r "$REPO/images/debian12-base" "$P/images/"
rm -f "$P/images/debian12-base/manifest.json"
sed "s|^workDir:.*|workDir: $WORK/osbake|" "$REPO/osbake.yaml" > "$P/osbake.yaml"
printf 'store/\nout/\n' > "$P/.gitignore"
git -C "$P" init -q -b main && git -C "$P" add -A
git -C "$P" -c user.email=b@b -c user.name=bench commit -qm bench

now() { date +%s.%N; }
osbake_build() { # $1 label
  git -C "$P" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m "bench $1"
  local t0 t1; t0=$(now)
  CI=true node "$REPO/bin/osbake.js" -C "$P" build debian12-base --release bench --skip-commit > "$WORK/$1.out" 2> "$WORK/$1.err"
  t1=$(now)
  local phases; phases=$(grep -o 'phases: .*' "$WORK/$1.out" | sed 's/phases: *//')
  local wall; wall=$(echo "$t1 - $t0" | bc)
  # osbake's own time: everything but the packer phase (which is Packer + QEMU + Ansible themselves)
  # and the vanilla phase (mmdebstrap, which plain Packer users do by hand or not at all).
  local pk va own
  pk=$(grep -o 'packer [0-9.]*s' <<<"$phases" | grep -o '[0-9.]*' || echo 0)
  va=$(grep -o 'vanilla [0-9.]*s' <<<"$phases" | grep -o '[0-9.]*' || echo 0)
  own=$(echo "$wall - $pk - $va" | bc)
  printf '| %s | %.1f | %.1f (%.1f%%) | %s |\n' "$1" "$wall" "$own" "$(echo "100 * $own / ($wall - $va)" | bc -l)" "$phases"
}
packer_by_hand() { # $1 label — the same template and inputs, run as a user would without osbake
  local vanilla; vanilla=$(ls "$WORK"/osbake/cache/vanilla/*.qcow2 | head -1)
  local d="$WORK/hand-$1"; mkdir -p "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/key"
  local t0 t1; t0=$(now)
  (cd "$d" && CHECKPOINT_DISABLE=1 packer build -machine-readable \
    -var "vanilla_disk=$vanilla" -var "ssh_private_key_file=$d/key" -var "ssh_public_key_file=$d/key.pub" \
    -var "output_directory=$d/output" -var "serial_log=$d/serial.log" -var "packages_file=$d/packages.tsv" \
    -var "packer_manifest=$d/manifest.json" "$P/images/debian12-base" > "$d/packer.out" 2>&1)
  t1=$(now)
  printf '| %s | %.1f | – | packer build only |\n' "$1" "$(echo "$t1 - $t0" | bc)"
  rm -rf "$d"
}

echo "| run | wall s | osbake's own s (share of wall without vanilla) | osbake phases |"
echo "|---|---|---|---|"
if [ -n "${BENCH_VANILLA_FROM:-}" ]; then
  mkdir -p "$WORK/osbake/cache/vanilla"
  cp -l "$BENCH_VANILLA_FROM"/*.qcow2 "$BENCH_VANILLA_FROM"/*.qcow2.json "$WORK/osbake/cache/vanilla/"
else
  osbake_build cold
fi
for i in $(seq 1 "$REPS"); do
  osbake_build "cached-$i"
  packer_by_hand "packer-by-hand-$i"
done
