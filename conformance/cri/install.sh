#!/usr/bin/env bash
# Installs what the CRI conformance run (conformance/cri/run.sh) needs into $CACHE, outside the
# checkout: critest and crictl (sigs.k8s.io/cri-tools v1.34.0, built from the Go module proxy,
# pinned by tools/go.mod and tools/go.sum), and Debian's dynamically linked busybox unpacked
# (the look-alike images are made of it; the package itself is not installed: it conflicts with
# busybox-static). Also the Debian packages: containerd 1.6.20, the CNI plugins, iptables (for
# the portmap plugin) and util-linux's ipcmk. Called by .ci/deps; does nothing when complete.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${CRI_CACHE:-/var/cache/berth-cri}
export DEBIAN_FRONTEND=noninteractive
say() { echo "cri-suite install: $*" >&2; }

need=(containerd containernetworking-plugins iptables util-linux iproute2 jq)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$CACHE"

# --- critest and crictl ----------------------------------------------------------------------
# The stamp is the checksum of the pins: a new go.sum rebuilds.
pins=$(cat "$here/tools/go.mod" "$here/tools/go.sum" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$CACHE/bin/.pins" 2>/dev/null)" != "$pins" ] || [ ! -x "$CACHE/bin/critest" ] || [ ! -x "$CACHE/bin/crictl" ]; then
	say "building critest and crictl (cri-tools v1.34.0) from the Go module proxy"
	tmp=$(mktemp -d "$CACHE/.bin-XXXXXX")
	chmod 755 "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$here/tools" &&
		go test -c -o "$tmp/critest" sigs.k8s.io/cri-tools/cmd/critest &&
		go build -o "$tmp/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
	echo "$pins" >"$tmp/.pins"
	rm -rf "$CACHE/bin"
	mv "$tmp" "$CACHE/bin"
	trap - EXIT
fi

# --- Debian's dynamic busybox, unpacked -------------------------------------------------------
if [ ! -x "$CACHE/busybox/bin/busybox" ]; then
	say "downloading Debian's busybox package"
	tmp=$(mktemp -d "$CACHE/.busybox-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp" # apt's download sandbox user must be able to write here
	(cd "$tmp" && apt-get download -qq busybox 2>/dev/null || { apt-get update -qq && apt-get download -qq busybox; })
	dpkg -x "$tmp"/busybox_*.deb "$tmp/x"
	"$tmp/x/bin/busybox" true # runs on this machine's libc
	rm -rf "$CACHE/busybox"
	mv "$tmp/x" "$CACHE/busybox"
	rm -rf "$tmp"
	trap - EXIT
fi
say "ready in $CACHE"
