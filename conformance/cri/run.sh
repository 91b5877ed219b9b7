#!/usr/bin/env bash
# The CRI conformance suite (critest, sigs.k8s.io/cri-tools v1.34.0) against a private
# containerd 1.6 whose CRI plugin has two runtime handlers of type io.containerd.runc.v2:
# `runc` (/usr/sbin/runc) and `berth` (the binary under test). The suite runs once per handler
# (critest --runtime-handler), in the same run, and results.md lists every test with each
# handler's verdict. Root needed; install.sh (run by .ci/deps) must have run. `make cri-suite`.
#
#   bash conformance/cri/run.sh
#
# Environment:
#   OUT=/tmp/berth-cri-suite   results.md, summary.tsv, critest and containerd logs (emptied first)
#   HANDLERS="runc berth"      handlers to run, in order
#   BERTH=./berth              the berth binary under test
#   FOCUS=REGEX                only the tests whose full names match (ginkgo focus)
#   STRICT=1                   exit 1 if a test passes with runc and fails with berth
#   SUBNET=10.222.0.0/24       the pods' network (a bridge of this run's own, host side .1)
#   LIMIT=10                   minutes per handler before critest is stopped (a run takes ~1.5)
#
# Everything runs on this machine only: containerd listens on a unix socket in a directory of
# its own (config, root, state, runtime roots), its streaming server and the image registry on
# 127.0.0.1, host ports are published on 127.0.0.1 only, and the pods' bridge has no route
# out (no masquerade, ip_forward left as it is). At the end (or on interrupt) every pod is
# removed, containerd and the registry stopped, leftover shims of this run killed, mounts under
# the run's directory undone and the bridge deleted (and the portmap plugin's iptables chains,
# when this run made them and nothing uses them). containerd and critest share an IPC namespace
# of their own (see below). Outside the run's directory, only what containerd 1.6 puts in fixed
# places is used while it runs: shim sockets in /run/containerd/s, pod network namespaces in
# /var/run/netns and libcni's cache in /var/lib/cni (removed with the pods, and the directories
# too when this run made them).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE=${CRI_CACHE:-/var/cache/berth-cri}
OUT="${OUT:-/tmp/berth-cri-suite}"
HANDLERS="${HANDLERS:-runc berth}"
BERTH="${BERTH:-$repo/berth}"
FOCUS="${FOCUS:-}"
STRICT="${STRICT:-0}"
SUBNET="${SUBNET:-10.222.0.0/24}"
LIMIT="${LIMIT:-10}"
BRIDGE=berthcri0

die() { echo "cri-suite: $*" >&2; exit 2; }
say() { echo "cri-suite: $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$CACHE/bin/critest" ] && [ -x "$CACHE/busybox/bin/busybox" ] || die "not installed in $CACHE (bash conformance/cri/install.sh)"
case "$OUT" in /|/tmp|/run|"$repo") die "refusing OUT=$OUT (it is emptied first)";; esac
[[ "$BERTH" = /* ]] || BERTH="$PWD/$BERTH"
for h in $HANDLERS; do
	case $h in
	runc) [ -x /usr/sbin/runc ] || die "runc not installed (bash .ci/deps)" ;;
	berth) [ -x "$BERTH" ] || die "$BERTH is not executable (make build)" ;;
	*) die "unknown handler $h (runc, berth)" ;;
	esac
done
ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists: another cri-suite run is going on (or left it: ip link del $BRIDGE)"

start_all=$(date +%s)
rm -rf --one-file-system "$OUT" && mkdir -p "$OUT" || die "cannot create $OUT"
W=$(mktemp -d /tmp/berth-cri.XXXXXX) || die "mktemp"
sock=$W/containerd.sock
crictl=("$CACHE/bin/crictl" --config "$W/crictl.yaml" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s)
cd_pid= reg_pid= crit_pid=
had_hostport=0 had_run_containerd=0 had_var_lib_cni=0
iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 && had_hostport=1
[ -d /run/containerd ] && had_run_containerd=1
[ -d /var/lib/cni ] && had_var_lib_cni=1
: >"$W/crictl.yaml"

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$crit_pid" ]; then
		kill "$crit_pid" 2>/dev/null # timeout(1) hands the signal on to critest
		wait "$crit_pid" 2>/dev/null
	fi
	if [ -n "$cd_pid" ] && kill -0 "$cd_pid" 2>/dev/null; then
		"${crictl[@]}" rmp -fa >/dev/null 2>&1
		kill "$cd_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$cd_pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$cd_pid" 2>/dev/null
	fi
	[ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null
	# Shims of this run (their command line names this run's socket) and what they still hold.
	# containerd may have just started a shim's own cleanup (`containerd-shim-runc-v2 ... delete`),
	# so look again until none is left.
	local p i
	for i in $(seq 25); do
		p=$(pgrep -f -- "-address $sock" 2>/dev/null) || break
		kill -9 $p 2>/dev/null
		sleep 0.2
	done
	wait 2>/dev/null
	findmnt -rn -o TARGET | grep -F "$W/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	ip link del "$BRIDGE" 2>/dev/null
	rm -rf --one-file-system "$W"
	# The portmap plugin's chains, if this run made them and no pod of anyone's is mapped now.
	if [ "$had_hostport" = 0 ] && iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q -- '^-N' &&
		! iptables -t nat -S CNI-HOSTPORT-DNAT | grep -q -- '^-A'; then
		iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
		iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
		iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ 2>/dev/null
		for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
			iptables -t nat -F "$c" 2>/dev/null && iptables -t nat -X "$c" 2>/dev/null
		done
	fi
	# The shims' socket directory (containerd 1.6 puts it there whatever its state dir).
	[ "$had_run_containerd" = 0 ] && rmdir /run/containerd/s /run/containerd 2>/dev/null
	# libcni's result cache (not configurable in containerd 1.6), empty once the pods are gone.
	[ "$had_var_lib_cni" = 0 ] && rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- images and the registry -------------------------------------------------------------
say "building the look-alike images"
(cd "$repo/conformance" &&
	CGO_ENABLED=0 go build -o "$W/imagebin" ./cri/imagebin &&
	go build -o "$W/registry" ./cri/registry) || die "cannot build conformance/cri/{imagebin,registry}"
"$W/registry" build -busybox "$CACHE/busybox" -imagebin "$W/imagebin" -out "$W/store" >"$OUT/images.log" 2>&1 ||
	{ cat "$OUT/images.log" >&2; die "image build failed"; }
"$W/registry" serve -dir "$W/store" -addr 127.0.0.1:0 -port-file "$W/registry.port" >"$OUT/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 50); do [ -s "$W/registry.port" ] && break; sleep 0.1; done
port=$(cat "$W/registry.port" 2>/dev/null) || die "registry did not start (see $OUT/registry.log)"
for host in registry.k8s.io gcr.io; do
	mkdir -p "$W/certs.d/$host"
	cat >"$W/certs.d/$host/hosts.toml" <<-EOF
		server = "https://$host"
		[host."http://127.0.0.1:$port"]
		  capabilities = ["pull", "resolve"]
	EOF
done

# --- network: a bridge of our own with the host side address, no forwarding ----------------
gw=$(echo "$SUBNET" | awk -F'[./]' '{print $1"."$2"."$3"."$4+1}')
ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
ip addr add "$gw/${SUBNET#*/}" dev "$BRIDGE" && ip link set "$BRIDGE" up || die "cannot set up $BRIDGE"
mkdir -p "$W/net.d"
cat >"$W/net.d/10-berth-cri.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-cri",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$W/ipam",
        "ranges": [[{"subnet": "$SUBNET", "gateway": "$gw"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "conditionsV4": ["-d", "127.0.0.1/32"]}
  ]
}
EOF

# --- containerd ------------------------------------------------------------------------------
runtime() { # NAME BINARY
	cat <<-EOF
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1]
		  runtime_type = "io.containerd.runc.v2"
		[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$1.options]
		  BinaryName = "$2"
		  Root = "$W/runtime/$1"
		  SystemdCgroup = false
	EOF
}
{
	cat <<-EOF
		version = 2
		root = "$W/root"
		state = "$W/state"
		# Plugins that would write outside this directory or need what this machine lacks.
		disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
		[grpc]
		  address = "$sock"
		[ttrpc]
		  address = "$sock.ttrpc"
		[debug]
		  level = "info"
		[metrics]
		  address = ""
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "registry.k8s.io/pause:3.6"
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  # Root here may not lower its oom_score_adj; the kubelet's default would ask for that.
		  restrict_oom_score_adj = true
		  enable_selinux = false
		[plugins."io.containerd.grpc.v1.cri".containerd]
		  snapshotter = "overlayfs"
		  default_runtime_name = "runc"
		[plugins."io.containerd.grpc.v1.cri".cni]
		  bin_dir = "/usr/lib/cni"
		  conf_dir = "$W/net.d"
		  max_conf_num = 1
		[plugins."io.containerd.grpc.v1.cri".registry]
		  config_path = "$W/certs.d"
	EOF
	runtime runc /usr/sbin/runc
	runtime berth "$BERTH"
} >"$W/config.toml"
cp "$W/config.toml" "$OUT/containerd.toml"

say "starting containerd ($W)"
# In an IPC namespace of its own, which critest joins: the host-IPC tests make System V shared
# memory segments "on the host" (ipcmk) and never remove them; they go with the namespace.
unshare --ipc -- containerd --config "$W/config.toml" >"$OUT/containerd.log" 2>&1 &
cd_pid=$!
for _ in $(seq 100); do
	"${crictl[@]}" info >/dev/null 2>&1 && break
	kill -0 "$cd_pid" 2>/dev/null || die "containerd exited (see $OUT/containerd.log)"
	sleep 0.2
done
"${crictl[@]}" info >"$OUT/crictl-info.json" 2>&1 || die "containerd's CRI does not answer (see $OUT/containerd.log)"

# --- critest, once per handler ---------------------------------------------------------------
# Tests that cannot run on this machine for any handler: "regex<TAB>reason" lines in skip.tsv.
skip_re=$(grep -v '^#' "$here/skip.tsv" | grep -v '^\s*$' | cut -f1 | paste -sd'|')
for h in $HANDLERS; do
	mkdir -p "$OUT/$h"
	say "critest --runtime-handler $h"
	t0=$(date +%s)
	args=(--runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --runtime-handler "$h"
		-ginkgo.no-color -ginkgo.v -ginkgo.json-report "$OUT/$h/report.json" -ginkgo.timeout "${LIMIT}m")
	[ -n "$skip_re" ] && args+=(-ginkgo.skip "$skip_re")
	[ -n "$FOCUS" ] && args+=(-ginkgo.focus "$FOCUS")
	# TMPDIR: the mount propagation tests bind-mount directories they make in it, and leave
	# them mounted when a test fails before its cleanup; under $W, cleanup() undoes them.
	# In the background and waited for, so that an interrupt is handled at once (cleanup stops it).
	mkdir -p "$W/tmp"
	cd "$OUT/$h" || die "cd $OUT/$h"
	TMPDIR=$W/tmp timeout -k 20 "$((LIMIT + 1))m" nsenter --ipc="/proc/$cd_pid/ns/ipc" -- \
		"$CACHE/bin/critest" "${args[@]}" -test.timeout "${LIMIT}m" >"$OUT/$h/critest.log" 2>&1 &
	crit_pid=$!
	wait "$crit_pid"
	crit_pid=
	cd / || die "cd /"
	echo $(($(date +%s) - t0)) >"$OUT/$h/seconds"
	"${crictl[@]}" rmp -fa >/dev/null 2>&1 # nothing of one handler's run left for the next
done

# --- results ---------------------------------------------------------------------------------
bash "$here/results.sh" "$OUT" "$here/skip.tsv" $HANDLERS
echo $(($(date +%s) - start_all)) >"$OUT/seconds"
cat "$OUT/totals.txt"
say "results in $OUT/results.md (wall time $(cat "$OUT/seconds")s)"
if [ "$STRICT" = 1 ] && [ -s "$OUT/regressions.txt" ]; then
	say "STRICT: these pass with runc and fail with berth:"
	cat "$OUT/regressions.txt" >&2
	exit 1
fi
exit 0
