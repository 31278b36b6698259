#!/usr/bin/env bash
# The installer payload of a built image at several zstd levels: bytes on the wire (payload.zst),
# pieces and the time to make it, made by the same code as `osbake build usb-installer`
# (dist/installer/payload.js preparePayload: qcow2 → raw → bmap → packed ranges → pieces).
# Usage: bench/payload.sh IMAGE.qcow2 [LEVEL...]   (default levels: 19 9; needs `npm run build`)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
image="$(realpath "${1:?usage: bench/payload.sh IMAGE.qcow2 [LEVEL...]}")"
shift
levels=("${@:-19 9}")
# shellcheck disable=SC2206
levels=(${levels[*]})
work="$(mktemp -d "${TMPDIR:-/tmp}/osbake-bench-payload-XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "# bench/payload.sh $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for level in "${levels[@]}"; do
  mkdir -p "$work/l$level"
  node --input-type=module -e "
    import { statSync, readFileSync } from 'node:fs';
    import { preparePayload } from '$repo/dist/installer/payload.js';
    import { createNullLogger } from '$repo/dist/log/logger.js';
    const [image, dir, level] = process.argv.slice(1);
    const t0 = Date.now();
    const p = await preparePayload({ image, dir, name: 'img', log: createNullLogger(),
      signal: new AbortController().signal, progress: () => {}, level: Number(level) });
    const zst = statSync(p.packedFile).size;
    const pieces = readFileSync(p.piecesFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length;
    console.log(\`zstd -\${level}: \${p.dataBytes} bytes of data in \${p.ranges} ranges → \${pieces} pieces, \` +
      \`\${zst} bytes (\${(zst / 2 ** 20).toFixed(1)} MiB) in \${((Date.now() - t0) / 1000).toFixed(1)} s\`);
  " "$image" "$work/l$level" "$level"
  rm -rf "$work/l$level"
done
