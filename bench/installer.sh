#!/usr/bin/env bash
# Benchmark: the usb-installer build and its size beyond the payload.
# Usage (as root, after scripts/setup.sh): bench/installer.sh [BASE_QCOW2]
#   BASE_QCOW2: release R's image (default: the cached vanilla disk in .osbake/cache/vanilla/).
# Runs two builds in a throwaway project (the first may bootstrap the installer OS cache, the
# second reuses it) and prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BASE="${1:-$(ls "$REPO"/.osbake/cache/vanilla/*.qcow2 | head -1)}"
WORK="$(mktemp -d /var/tmp/osbake-bench-usb-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
P="$WORK/project"
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
make_bench_project "$REPO" "$BASE" "$P" </dev/null

now() { date +%s.%N; }
echo "| run | wall s | stick MiB | payload.zst MiB | overhead MiB | data ranges | osbake phases |"
echo "|---|---|---|---|---|---|---|"
for run in 1 2; do
  git -C "$P" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m "bench $run"
  t0=$(now)
  if ! CI=true node "$REPO/bin/osbake.js" -C "$P" build usb-installer --release bench --skip-commit > "$WORK/$run.out" 2> "$WORK/$run.err"; then
    echo "bench: build $run failed:" >&2; tail -n 20 "$WORK/$run.err" >&2; exit 1
  fi
  t1=$(now)
  phases=$(grep -o 'phases: .*' "$WORK/$run.out" | sed 's/phases: *//')
  node -e '
    const m = require(process.argv[1]); const i = m.builds.at(-1).custom_data.installer;
    const mib = (n) => (n / 2 ** 20).toFixed(1);
    console.log(`| ${process.argv[2]} | ${process.argv[3]} | ${mib(i.stick_bytes)} | ${mib(i.payload_zst_bytes)} | ${mib(i.stick_bytes - i.payload_zst_bytes)} | ${i.payload_ranges} | ${process.argv[4]} |`);
  ' "$P/images/usb-installer/manifest.json" "$run" "$(echo "$t1 - $t0" | bc | xargs printf '%.1f')" "$phases"
done
