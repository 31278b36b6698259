# osbake installer: a node's identity (sourced by /init as /lib/osbake/identity.sh; busybox sh).
# The identity is one block of "key value" lines (src/installer/node-identity.ts): from the
# server for a network install (GET .../netboot/node/<mac>), or picked out of the stick's
# osbake/nodes.conf by name (node= / osbake.node=), by a MAC of this machine, by its DMI serial, or
# in the menu. After the image is written it goes into the installed root: hostname, network in
# the distro's own configuration (NetworkManager keyfile, else systemd-networkd), SSH
# authorized_keys per user, extra files. Values are never evaluated: keys and file contents are
# base64, the rest single words checked by osbake validate. Needs log and fail from /init.

# Scratch files (the initramfs's /tmp; another directory only in osbake's own tests).
IDT="${ID_TMP:-/tmp}"
ID="$IDT/identity"
# Where this machine's NICs and DMI facts are (another tree only in osbake's own tests).
ID_SYS="${ID_SYS:-/sys}"

# The block of file $1 whose key $2 has value $3 (the "node" line counts as a key), to stdout.
id_pick() { # file key value
  awk -v k="$2" -v v="$3" '
    $1 == "node" { blk = $0 "\n"; inb = 1; hit = (k == "node" && $2 == v); next }
    inb && $1 == "end" { if (hit) { printf "%s", blk; found = 1; exit } inb = 0; next }
    inb { blk = blk $0 "\n"; if ($1 == k && $2 == v) hit = 1 }
    END { exit found ? 0 : 1 }' "$1"
}

# Names of the nodes in file $1, in order.
id_names() { awk '$1 == "node" { print $2 }' "$1"; }

# The first (or every) value of key $1 in the chosen identity.
id_get() { [ -s "$ID" ] && awk -v k="$1" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$ID"; }
id_all() { [ -s "$ID" ] && awk -v k="$1" '$1 == k { sub(/^[^ ]+ /, ""); print }' "$ID"; }

# MACs of this machine's NICs (not lo, not virtual ones without a device).
id_macs() {
  for d in "$ID_SYS"/class/net/*; do
    [ -e "$d/device" ] || continue
    cat "$d/address" 2>/dev/null
  done
}

# The stick: choose the node in $1 (nodes.conf) by name $2 (may be empty), MAC, then DMI serial.
# Returns 0 with $ID written, 1 when nothing matched (the menu may ask).
id_choose() { # nodes-file [name]
  rm -f "$ID"
  [ -s "$1" ] || return 1
  if [ -n "$2" ]; then
    id_pick "$1" node "$2" >"$ID" || fail "node=$2: no such node in $(basename "$1") ($(id_names "$1" | tr '\n' ' '))"
    log "node $2 (named in the settings)"
    return 0
  fi
  for m in $(id_macs); do
    if id_pick "$1" mac "$m" >"$ID"; then
      log "node $(id_get node) (by the MAC $m of this machine)"
      return 0
    fi
  done
  serial="$(cat "$ID_SYS/class/dmi/id/product_serial" 2>/dev/null | tr -d ' ')"
  if [ -n "$serial" ] && id_pick "$1" serial "$serial" >"$ID"; then
    log "node $(id_get node) (by this machine's serial number $serial)"
    return 0
  fi
  rm -f "$ID"
  log "no node of $(basename "$1") matches this machine (MACs $(id_macs | tr '\n' ' ')serial ${serial:-none})"
  return 1
}

# Is any existing component of path $2 under root $1 a symlink? (a link in the image must not
# send a write outside the installed root, where the installer's own files are)
id_unsafe() { # root path
  p=''
  for c in $(echo "$2" | tr '/' ' '); do
    p="$p/$c"
    [ -L "$1$p" ] && return 0
  done
  return 1
}

# Write $3 (a file of the installer's) to $2 under root $1 with mode $4, owner $5: temp + rename.
id_put() { # root path from mode owner
  id_unsafe "$1" "$2" && fail "$2 in the installed system is or lies under a symbolic link: not written"
  mkdir -p "$1${2%/*}" || fail "cannot make ${2%/*} in the installed system"
  cp "$3" "$1$2.osbake-new" && chmod "$4" "$1$2.osbake-new" && chown "$5" "$1$2.osbake-new" &&
    mv -f "$1$2.osbake-new" "$1$2" || fail "cannot write $2 in the installed system"
}

# The NIC's network settings as a NetworkManager keyfile (Rocky) or a systemd-networkd unit (Debian).
id_network() { # root
  grep -q '^\(dhcp\|address\) ' "$ID" 2>/dev/null || return 0
  nic="$(id_get nic)"
  [ -n "$nic" ] || nic="$(id_macs | head -n 1)"
  [ -n "$nic" ] || fail "no NIC to configure (this machine has none)"
  dhcp="$(id_get dhcp)"
  a4="$(id_all address | grep -v :)"
  a6="$(id_all address | grep :)"
  if [ -x "$1/usr/sbin/NetworkManager" ]; then
    {
      printf '[connection]\nid=osbake-node\ntype=ethernet\nautoconnect=true\nautoconnect-priority=100\n\n'
      printf '[ethernet]\nmac-address=%s\n\n[ipv4]\n' "$nic"
      # No IPv4 at all (an IPv6-only node, dhcp: false): disabled — NetworkManager refuses
      # method=manual without an address.
      if [ "$dhcp" = yes ]; then echo 'method=auto'; elif [ -n "$a4" ]; then echo 'method=manual'; else echo 'method=disabled'; fi
      i=1
      for a in $a4; do echo "address$i=$a"; i=$((i + 1)); done
      [ -n "$(id_get gateway)" ] && echo "gateway=$(id_get gateway)"
      d4="$(id_all dns | grep -v : | tr '\n' ';')"
      [ -n "$d4" ] && echo "dns=$d4"
      s="$(id_all search | tr '\n' ';')"
      [ -n "$s" ] && echo "dns-search=$s"
      printf '\n[ipv6]\n'
      if [ -n "$a6" ]; then echo 'method=manual'; else echo 'method=auto'; fi
      i=1
      for a in $a6; do echo "address$i=$a"; i=$((i + 1)); done
      [ -n "$(id_get gateway6)" ] && echo "gateway=$(id_get gateway6)"
      d6="$(id_all dns | grep : | tr '\n' ';')"
      [ -n "$d6" ] && echo "dns=$d6"
    } >"$IDT/nm"
    id_put "$1" /etc/NetworkManager/system-connections/osbake-node.nmconnection "$IDT/nm" 600 0:0
    log "network: NetworkManager connection osbake-node on $nic"
  elif [ -e "$1/lib/systemd/systemd-networkd" ] || [ -e "$1/usr/lib/systemd/systemd-networkd" ]; then
    {
      printf '# osbake: this node'"'"'s network (nodes: in osbake.yaml)\n[Match]\nMACAddress=%s\n\n[Network]\n' "$nic"
      if [ "$dhcp" = yes ]; then echo 'DHCP=ipv4'; else echo 'DHCP=no'; fi
      for a in $a4 $a6; do echo "Address=$a"; done
      for g in $(id_get gateway) $(id_get gateway6); do echo "Gateway=$g"; done
      for d in $(id_all dns); do echo "DNS=$d"; done
      s="$(id_all search | tr '\n' ' ' | sed 's/ $//')"
      [ -n "$s" ] && echo "Domains=$s"
    } >"$IDT/networkd"
    # 10- sorts before the image's own files: systemd-networkd uses the first that matches.
    id_put "$1" /etc/systemd/network/10-osbake-node.network "$IDT/networkd" 644 0:0
    # Without systemd-resolved the name servers go to resolv.conf itself.
    if [ -n "$(id_all dns)" ] && [ ! -L "$1/etc/resolv.conf" ]; then
      { for s in $(id_all search); do echo "search $s"; done | head -n 1
        for d in $(id_all dns); do echo "nameserver $d"; done; } >"$IDT/resolv"
      id_put "$1" /etc/resolv.conf "$IDT/resolv" 644 0:0
    fi
    log "network: systemd-networkd unit 10-osbake-node.network on $nic"
  else
    fail "the installed system has neither NetworkManager nor systemd-networkd: its addresses cannot be set"
  fi
}

# authorized_keys of each user named (who must exist in the installed system).
id_keys() { # root
  id_all key >"$IDT/keys"
  [ -s "$IDT/keys" ] || return 0
  while read -r user b64; do
    ent="$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 ":" $6; exit }' "$1/etc/passwd")"
    [ -n "$ent" ] || fail "user $user (authorizedKeys) does not exist in the installed system"
    owner="${ent%:*}"
    home="${ent##*:}"
    case "$home" in /*) ;; *) fail "user $user has no home directory ($home)" ;; esac
    case "$home" in *[!A-Za-z0-9._/-]* | */../* | */..) fail "user $user's home $home is not a plain path" ;; esac
    id_unsafe "$1" "$home/.ssh/authorized_keys" && fail "$home/.ssh of $user is or lies under a symbolic link"
    if [ ! -d "$1$home/.ssh" ]; then
      mkdir -p "$1$home/.ssh" && chmod 700 "$1$home/.ssh" && chown "$owner" "$1$home/.ssh" ||
        fail "cannot make $home/.ssh"
    fi
    f="$1$home/.ssh/authorized_keys"
    echo "$b64" | base64 -d >"$IDT/key.line" || fail "a key of $user is not base64"
    echo >>"$IDT/key.line"
    if [ -f "$f" ]; then cp "$f" "$IDT/ak"; else : >"$IDT/ak"; fi
    grep -qxF "$(cat "$IDT/key.line")" "$IDT/ak" || cat "$IDT/key.line" >>"$IDT/ak"
    id_put "$1" "$home/.ssh/authorized_keys" "$IDT/ak" 600 "$owner"
    log "ssh: a key for $user ($(awk '{ print $1, $3 }' "$IDT/key.line"))"
  done <"$IDT/keys"
}

# Extra files, owner root.
id_files() { # root
  id_all file >"$IDT/files"
  [ -s "$IDT/files" ] || return 0
  while read -r mode path b64; do
    echo "$b64" | base64 -d >"$IDT/file.bytes" || fail "the content of $path is not base64"
    id_put "$1" "$path" "$IDT/file.bytes" "$mode" 0:0
    log "file: $path ($(stat -c %s "$IDT/file.bytes") bytes, mode $mode)"
  done <"$IDT/files"
}

# Everything of the identity except the hostname (set by /init for every install) into root $1.
id_apply() { # root
  [ -s "$ID" ] || return 0
  id_network "$1"
  id_keys "$1"
  id_files "$1"
}
