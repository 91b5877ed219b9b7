#!/usr/bin/env bash
# mkbundle.sh DIR [ARGS...]: make an OCI bundle in DIR whose rootfs is busybox-static (from
# apt), with config.json from `berth spec`, no terminal, and ARGS as the program.
set -euo pipefail
dir=$1; shift
berth=${BERTH:-berth}
[ -x /bin/busybox ] || { echo "mkbundle: /bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for c in $(/bin/busybox --list); do
	[ "$c" = busybox ] || ln -s busybox "$dir/rootfs/bin/$c"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
"$berth" spec --bundle "$dir"
sed -i 's/"terminal": true/"terminal": false/' "$dir/config.json"
if [ $# -gt 0 ]; then
	args=
	for a in "$@"; do
		a=${a//\\/\\\\}; a=${a//\"/\\\"}    # JSON string escapes
		args+="\"$a\", "
	done
	args=${args%, }
	args=${args//\\/\\\\}; args=${args//&/\\&}; args=${args//|/\\|}   # sed replacement escapes
	sed -i "s|^\(\t*\)\"sh\"$|\1${args}|" "$dir/config.json"
fi
