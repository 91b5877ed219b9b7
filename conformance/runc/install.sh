#!/usr/bin/env bash
# Installs runc's own integration suite (tests/integration/*.bats at v1.1.5, the runc that Debian
# 12 ships) and what it needs into $CACHE, outside the checkout: the source, the helper programs
# it runs (recvtty, sd-helper, seccompagent), and the two root filesystems its get-images.sh would
# download from the internet (a busybox one made from busybox-static, a debootstrap'd Debian).
# Called by .ci/deps; does nothing when the cache is complete.
#
# The source comes from Debian's source package runc 1.1.5+ds1-1+deb12u1 (apt verifies it
# against the signed .dsc). Its tests/ and contrib/ are byte for byte those of runc's tag v1.1.5
# (commit f19387a6bec4944c770f7668ab51c4348d9c2f38); the checksum below pins that tree, and the
# install stops if it differs. The "+ds1" tarball lacks vendor/: the helpers' modules come from
# the Go module proxy, checked by runc's own go.sum.
set -euo pipefail
CACHE=${RUNC_SUITE_CACHE:-/var/cache/berth-runc-suite}
ver=1.1.5+ds1-1+deb12u1
commit=f19387a6bec4944c770f7668ab51c4348d9c2f38
# sha256 of `find tests contrib -type f | sort | xargs sha256sum` in the v1.1.5 tree.
treesum=00e194b73f6d01c1de4d2a51f52c465c9e82908527a2e46d4e480975f51b602f
src=$CACHE/runc-1.1.5
export DEBIAN_FRONTEND=noninteractive

say() { echo "runc-suite install: $*" >&2; }
need=(bats jq gawk debootstrap xz-utils gcc util-linux bsdutils iproute2 busybox-static)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

tree_sum() { (cd "$1" && find tests contrib -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1); }

# --- the source ---------------------------------------------------------------------------
if [ ! -f "$src/.complete" ]; then
	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/.src-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# A private deb-src list, so that the machine's own apt configuration is left as it is.
	mkdir -p "$tmp/apt/lists/partial"
	cat >"$tmp/apt/src.sources" <<-SRC
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	SRC
	aptsrc=(-o Dir::Etc::SourceList="$tmp/apt/src.sources" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$tmp/apt/lists")
	say "downloading Debian's source package runc $ver"
	apt-get "${aptsrc[@]}" update -qq
	(cd "$tmp" && apt-get "${aptsrc[@]}" source --download-only -qq "runc=$ver" 2>/dev/null)
	tar -xf "$tmp"/runc_1.1.5+ds1.orig.tar.xz -C "$tmp"
	got=$(tree_sum "$tmp/runc-1.1.5")
	[ "$got" = "$treesum" ] || { say "the source's tests/contrib tree is not runc v1.1.5's ($commit): $got"; exit 1; }
	rm -rf "$src" && mv "$tmp/runc-1.1.5" "$src"
	touch "$src/.complete"
	rm -rf "$tmp"
	trap - EXIT
fi

# --- the helper programs, where helpers.bash looks for them -------------------------------
for h in recvtty sd-helper seccompagent; do
	[ -x "$src/contrib/cmd/$h/$h" ] && continue
	say "building $h"
	# seccompagent needs libseccomp (cgo): runc's build tag seccomp.
	dpkg -s libseccomp-dev >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends libseccomp-dev pkg-config >/dev/null
	(cd "$src" && GOFLAGS=-mod=mod GOWORK=off GOTOOLCHAIN=local go build -trimpath -tags seccomp \
		-o "contrib/cmd/$h/$h" "./contrib/cmd/$h")
done

# --- the images get-images.sh would download ----------------------------------------------
td=$src/tests/integration/testdata
if [ ! -f "$td/busybox-amd64.tar.xz" ]; then
	say "making busybox-amd64.tar.xz from busybox-static"
	r=$(mktemp -d)
	chmod 755 "$r" # the image's / (mktemp made it 0700): a non-root container user must enter it
	mkdir -p "$r"/{bin,etc,home,root,tmp,usr/sbin,var/spool/mail,var/www,dev,proc,sys}
	chmod 1777 "$r/tmp" && chmod 700 "$r/root"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln "$r/bin/busybox" "$r/bin/$a"; done
	# The users and groups of the busybox image the suite was written against.
	cat >"$r/etc/passwd" <<-P
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		sync:x:4:100:sync:/bin:/bin/sync
		mail:x:8:8:mail:/var/spool/mail:/bin/false
		www-data:x:33:33:www-data:/var/www:/bin/false
		operator:x:37:37:Operator:/var:/bin/false
		nobody:x:65534:65534:nobody:/home:/bin/false
	P
	cat >"$r/etc/group" <<-G
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		adm:x:4:
		tty:x:5:
		disk:x:6:
		lp:x:7:
		mail:x:8:
		kmem:x:9:
		wheel:x:10:root
		cdrom:x:11:
		dialout:x:18:
		floppy:x:19:
		video:x:28:
		audio:x:29:
		tape:x:32:
		www-data:x:33:
		operator:x:37:
		utmp:x:43:
		plugdev:x:46:
		staff:x:50:
		lock:x:54:
		netdev:x:82:
		users:x:100:
		nogroup:x:65534:
	G
	tar -C "$r" --numeric-owner -cJf "$td/.busybox.tmp" . && mv "$td/.busybox.tmp" "$td/busybox-amd64.tar.xz"
	rm -rf "$r"
fi
if [ ! -f "$td/debian-amd64.tar.xz" ]; then
	say "debootstrapping a minimal Debian for debian-amd64.tar.xz (about a minute)"
	r=$(mktemp -d)
	chmod 755 "$r"
	debootstrap --variant=minbase bookworm "$r" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
		{ say "debootstrap failed: see $CACHE/debootstrap.log"; exit 1; }
	rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
	tar -C "$r" --numeric-owner -cf - . | xz -T2 -1 >"$td/.debian.tmp" && mv "$td/.debian.tmp" "$td/debian-amd64.tar.xz"
	rm -rf "$r"
fi
say "ready in $src"
