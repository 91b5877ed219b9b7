#!/usr/bin/env bash
# build.sh OUT [LDFLAGS]: berth as it ships (make build, and the tests that build it): the lean
# build carrying the full one as its companion (below; internal/companion), static
# (the waiting stage runs inside the container's rootfs, where no loader is), with cgo for the
# init's constructor, and linked with musl when musl-gcc is installed (.ci/deps installs
# musl-tools): a berth process then starts about 0.8 ms of CPU sooner than with glibc's static
# start-up (docs/performance.md). Without musl-gcc, gcc and glibc, as before.
set -euo pipefail
out=$1
ldflags=${2:-}
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
if [ -z "${CC:-}" ] && command -v musl-gcc >/dev/null; then
	# musl's headers do not carry the kernel's (linux/, asm/, asm-generic/): those three alone
	# are taken from the system's, searched after musl's own.
	kh=$PWD/.build/kernel-headers
	multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
	mkdir -p "$kh"
	ln -sfn /usr/include/linux "$kh/linux"
	ln -sfn /usr/include/asm-generic "$kh/asm-generic"
	ln -sfn "/usr/include/$multiarch/asm" "$kh/asm"
	export CC=musl-gcc CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -idirafter $kh"
fi
tags=osusergo,netgo,urfave_cli_no_docs
build() { # build TAGS OUT
	"${GO:-go}" build -trimpath -tags "$1" \
		-ldflags "$ldflags -linkmode external -extldflags -static" -o "$2" ./cmd/berth
}
# Two builds of cmd/berth (internal/companion): the full one, every package, written where the
# lean one embeds it as its companion; then the lean one (no decompression, no criu), which is
# berth. Builds run one at a time here (the tests build berth from several packages at once),
# and the companion is renamed into place whole.
mkdir -p .build
exec 9>.build/build.lock
flock 9
payload=internal/companion/payload/berth-full
build "$tags" "$payload.tmp"
mv -f "$payload.tmp" "$payload"
build "$tags,lean" "$out"
