#!/usr/bin/env bash
# Benchmark: download throughput from `osbake serve` vs nginx serving the same files, in one run.
#   whole   one client downloads the whole 2 GiB artifact (curl, best of REPS)
#   ranges  8 clients each download 1/8 of it as a byte range, in parallel (wall time for all 8)
#   c200    wrk with 200 concurrent connections for DURATION on a 1 MiB file: requests/s, errors
# Both servers read from the page cache (the file is read once first) and write an access log.
# Usage (after scripts/setup.sh; needs nginx-light, wrk, curl): bench/serve.sh [REPS] [DURATION]
# Prints a Markdown table to paste into bench/BENCHMARKS.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
REPS="${1:-3}"
DURATION="${2:-10s}"
for t in nginx wrk curl; do command -v "$t" >/dev/null || { echo "bench: $t not found (apt-get install nginx-light wrk curl)" >&2; exit 1; }; done
WORK="$(mktemp -d /var/tmp/osbake-bench-serve-XXXXXX)"
chmod 755 "$WORK" # nginx's workers run as www-data
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
STORE="$WORK/store"
mkdir -p "$STORE/builds" "$WORK/nginx"
BIG=builds/bench-2g.qcow2
head -c 2G /dev/urandom > "$STORE/$BIG"
head -c 1M /dev/urandom > "$STORE/builds/small.bin"
SIZE=$(stat -c %s "$STORE/$BIG")
cat "$STORE/$BIG" > /dev/null

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
NGINX_PORT=$(free_port)
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  types { application/octet-stream qcow2; }
  default_type application/octet-stream;
  access_log $WORK/nginx/access.log;
  sendfile on; tcp_nopush on; keepalive_timeout 5;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; root $STORE; autoindex on; }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' &
PIDS+=($!)
# osbake serve as installed (--engine auto: nginx in front sends the files, osbake behind it) and
# osbake's own server alone (--engine node, --workers auto: one process per core).
OSBAKE_PORT=$(free_port)
node "$REPO/bin/osbake.js" serve --root "$STORE" --port "$OSBAKE_PORT" > "$WORK/osbake.log" 2>&1 &
PIDS+=($!)
OSBAKE1_PORT=$(free_port)
node "$REPO/bin/osbake.js" serve --root "$STORE" --port "$OSBAKE1_PORT" --engine node > "$WORK/osbake1.log" 2>&1 &
PIDS+=($!)
for port in "$NGINX_PORT" "$OSBAKE_PORT" "$OSBAKE1_PORT"; do
  ok=
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/builds/small.bin" && ok=1 && break; sleep 0.2; done
  [ -n "$ok" ] || { echo "bench: the server on port $port does not serve builds/small.bin" >&2; cat "$WORK"/nginx/error.log "$WORK/osbake.log" >&2; exit 1; }
done
# Both must send the same bytes.
[ "$(curl -s "http://127.0.0.1:$NGINX_PORT/$BIG" | sha256sum)" = "$(curl -s "http://127.0.0.1:$OSBAKE_PORT/$BIG" | sha256sum)" ] || { echo "bench: the servers differ" >&2; exit 1; }

whole() { # $1 port → best MiB/s of REPS whole downloads
  local best=0 s
  for _ in $(seq "$REPS"); do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$1/$BIG")
    best=$(echo "if ($s > $best) $s else $best" | bc)
  done
  echo "scale=1; $best / 1048576" | bc
}
ranges() { # $1 port → MiB/s for 8 parallel ranges covering the file (best of REPS)
  local best=0 part=$((SIZE / 8)) t0 t1 rate
  for _ in $(seq "$REPS"); do
    local curls=()
    t0=$(date +%s.%N)
    for i in $(seq 0 7); do
      local from=$((i * part)) to=$(( i == 7 ? SIZE - 1 : (i + 1) * part - 1 ))
      curl -sf -o /dev/null -r "$from-$to" "http://127.0.0.1:$1/$BIG" &
      curls+=($!)
    done
    for p in "${curls[@]}"; do wait "$p"; done
    t1=$(date +%s.%N)
    rate=$(echo "scale=1; $SIZE / ($t1 - $t0) / 1048576" | bc)
    best=$(echo "if ($rate > $best) $rate else $best" | bc)
  done
  echo "$best"
}
c200() { # $1 port → "req/s MiB/s errors"
  local out; out=$(wrk -t2 -c200 -d"$DURATION" --timeout 30s --latency "http://127.0.0.1:$1/builds/small.bin")
  echo "$out" > "$WORK/wrk-$1.txt"
  local rps mbs errs non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  mbs=$(awk '/^Transfer\/sec/ {print $2}' <<<"$out")
  errs=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' <<<"$out"); errs=${errs:-0}
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  echo "$rps $mbs $((errs + non2xx))"
}

declare -A W R C
for name in nginx osbake osbake1; do
  case $name in nginx) port=$NGINX_PORT ;; osbake) port=$OSBAKE_PORT ;; osbake1) port=$OSBAKE1_PORT ;; esac
  W[$name]=$(whole "$port")
  R[$name]=$(ranges "$port")
  C[$name]=$(c200 "$port")
done
ratio() { echo "scale=2; $1 / $2" | bc; }
read -r nrps nmbs nerr <<<"${C[nginx]}"
read -r orps ombs oerr <<<"${C[osbake]}"
read -r o1rps o1mbs o1err <<<"${C[osbake1]}"
engine=$(grep -o 'nginx [0-9.]* sends the files, [0-9]* workers' "$WORK/osbake.log" | head -1)
workers=$(grep -o '[0-9]* workers' "$WORK/osbake1.log" | head -1)
echo "| test | nginx | osbake serve (default: ${engine:-node engine}) | osbake / nginx | osbake serve --engine node ($workers) | --engine node / nginx |"
echo "|---|---|---|---|---|---|"
echo "| whole 2 GiB, 1 client (MiB/s, best of $REPS) | ${W[nginx]} | ${W[osbake]} | $(ratio "${W[osbake]}" "${W[nginx]}") | ${W[osbake1]} | $(ratio "${W[osbake1]}" "${W[nginx]}") |"
echo "| 8 parallel ranges of 256 MiB (MiB/s, best of $REPS) | ${R[nginx]} | ${R[osbake]} | $(ratio "${R[osbake]}" "${R[nginx]}") | ${R[osbake1]} | $(ratio "${R[osbake1]}" "${R[nginx]}") |"
echo "| 200 connections, 1 MiB file, $DURATION (req/s) | $nrps ($nmbs/s) | $orps ($ombs/s) | $(ratio "$orps" "$nrps") | $o1rps ($o1mbs/s) | $(ratio "$o1rps" "$nrps") |"
echo "| errors with 200 connections (socket errors + non-2xx) | $nerr | $oerr | | $o1err | |"
# The web page (moved here from serve.test.ts, which asserted < 5 s): GET / assembles the catalog.
page_ms() { curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$OSBAKE_PORT/" | awk '{printf "%.0f", $1 * 1000}'; }
echo "| the web page GET / (ms, best of 5; osbake only: nginx has no page) | – | $(for _ in 1 2 3 4 5; do page_ms; echo; done | sort -n | head -1) | | | |"
echo
echo "machine: $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nginx -v 2>&1); node $(node --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
