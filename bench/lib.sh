# Shared by the installer benchmarks (sourced, not run).
# make_bench_project REPO BASE_QCOW2 P: a throwaway project in P with the usb-installer definition,
# the shared cache of REPO, and release "bench" recording BASE_QCOW2 as its debian12-base image.
# Extra osbake.yaml lines may be given on stdin.
make_bench_project() {
  local repo="$1" base="$2" p="$3" b=debian12-base-bench-main-00000000
  mkdir -p "$p/images" "$p/store/builds"
  cp -r "$repo/images/usb-installer" "$p/images/"
  rm -f "$p/images/usb-installer/manifest.json"
  { sed "s|^workDir:.*|workDir: $repo/.osbake|" "$repo/osbake.yaml"; [ -t 0 ] || cat; } > "$p/osbake.yaml"
  printf 'store/\nout/\n.osbake/\n' > "$p/.gitignore"
  cp "$base" "$p/store/builds/$b.qcow2"
  cat > "$p/manifest.yaml" <<YAML
releases:
  bench:
    date: "$(date +%F)"
    git_commit: 0123456789abcdef0123456789abcdef01234567
    artifacts:
      - name: debian12-base
        kind: image
        path: builds/$b.qcow2
        sha256: $(sha256sum "$p/store/builds/$b.qcow2" | cut -d' ' -f1)
        size: $(stat -c %s "$p/store/builds/$b.qcow2")
        build: $b
YAML
  git -C "$p" init -q -b main && git -C "$p" add -A
  git -C "$p" -c user.email=b@b -c user.name=bench commit -qm bench
}

# make_image_project REPO WORK P: a throwaway project in P holding the repository's debian12-base
# definition (no build record), its work directory WORK/osbake (caches of its own), one commit.
make_image_project() {
  local repo="$1" work="$2" p="$3"
  mkdir -p "$p/images"
  cp -r "$repo/images/debian12-base" "$p/images/"
  rm -f "$p/images/debian12-base/manifest.json"
  sed "s|^workDir:.*|workDir: $work/osbake|" "$repo/osbake.yaml" > "$p/osbake.yaml"
  printf 'store/\nout/\n' > "$p/.gitignore"
  git -C "$p" init -q -b main && git -C "$p" add -A
  git -C "$p" -c user.email=b@b -c user.name=bench commit -qm bench
}
