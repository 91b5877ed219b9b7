#!/usr/bin/env bash
# make bench: container start-up, berth against runc and crun (bench/start), the time of each
# step of one berth container (bench/steps), plus whatever other benchmarks sit beside this
# script (bench/*.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_N:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BERTH=./berth bash scripts/mkbundle.sh "$work/bundle" true >/dev/null
# crun 1.8 knows only 1.0.x versions; the config uses nothing newer.
sed -i "s/\"ociVersion\": \"[^\"]*\"/\"ociVersion\": \"1.0.2\"/" "$work/bundle/config.json"
go build -o "$work/startbench" ./bench/start
go build -o "$work/steps" ./bench/steps
# BENCH_BASE=path/to/older/berth adds that build to the same interleaved run (as "base").
base=
steps_base=
if [ -n "${BENCH_BASE:-}" ]; then
	base="-base '$(realpath "$BENCH_BASE")'"
	steps_base="&& echo && echo base: && '$work/steps' -n $n -bundle '$work/bundle' -berth '$(realpath "$BENCH_BASE")'"
fi
# crun refuses this hybrid host unless the controller-less cgroup2 mount is hidden: run all
# three runtimes in one private mount namespace with a tmpfs over it.
unshare -m sh -c "mount --make-rprivate / && { ! mountpoint -q /sys/fs/cgroup/unified || mount -t tmpfs none /sys/fs/cgroup/unified; } && '$work/startbench' -n $n -bundle '$work/bundle' -berth ./berth $base && echo && '$work/steps' -n $n -bundle '$work/bundle' -berth ./berth $steps_base"
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] || bash "$b"
done
