#!/usr/bin/env bash
# bench/image.sh (run by make bench): unpacking a multi-layer image, berth against umoci, on a
# fresh tmpfs (the disk is not what is measured), and run --image against run of a plain
# bundle. The image is made here, deterministically, from busybox and /usr/share of this host:
# a base layer, three layers of /usr/share trees, a "package" layer, and layers of whiteouts
# and an opaque directory. BENCH_IMAGE_N sets the repetitions (medians are reported).
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$(realpath "${BERTH:-./berth}")
n=${BENCH_IMAGE_N:-5}
runs=${BENCH_N:-30}
if ! command -v umoci >/dev/null; then
	echo "image bench: umoci is missing (bash .ci/deps): skipped"
	exit 0
fi
work=$(mktemp -d)
mount -t tmpfs -o size=4g tmpfs "$work"
cleanup() {
	for r in "$work"/root*; do
		[ -d "$r" ] || continue
		for c in $("$berth" --root "$r" list -q 2>/dev/null); do "$berth" --root "$r" delete -f "$c" || true; done
	done
	umount -l "$work" 2>/dev/null || true
	rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
cd "$work"

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
msf() { awk -v d="$(($(date +%s%N) - $1))" 'BEGIN { printf "%.2f\n", d / 1e6 }'; } # ms, 2 decimals
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- the image ---------------------------------------------------------------------------
BERTH=$berth bash "$OLDPWD/scripts/mkbundle.sh" bundle true >/dev/null
umoci init --layout img
umoci new --image img:bench
umoci insert --image img:bench bundle/rootfs / >/dev/null
umoci config --image img:bench --config.cmd true >/dev/null
for d in perl vim zoneinfo; do
	[ -d /usr/share/$d ] && umoci insert --image img:bench /usr/share/$d /usr/share/$d >/dev/null
done
mkdir -p pkg/usr/share
for d in icons i18n mime X11 perl5; do
	[ -d /usr/share/$d ] && cp -a /usr/share/$d pkg/usr/share/
done
umoci insert --image img:bench pkg / >/dev/null
rm -rf pkg
for p in /usr/share/vim/vim90/doc /usr/share/icons/Adwaita /usr/share/perl/5.36.0/unicore; do
	umoci insert --image img:bench --whiteout "$p" >/dev/null
done
mkdir -p zi && echo UTC >zi/README
umoci insert --image img:bench --opaque zi /usr/share/zoneinfo >/dev/null
umoci gc --layout img
manifest=$(sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/' img/index.json)
layers=$(grep -o '"digest":"sha256:[0-9a-f]*"' "img/blobs/sha256/$manifest" | tail -n +2 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
comp=0 raw=0 entries=0 nl=0
for l in $layers; do
	comp=$((comp + $(stat -c %s "img/blobs/sha256/$l")))
	raw=$((raw + $(zcat "img/blobs/sha256/$l" | wc -c)))
	entries=$((entries + $( (zcat "img/blobs/sha256/$l" | tar -t 2>/dev/null || true) | wc -l)))
	nl=$((nl + 1))
done
echo "image: $nl layers (gzip), $((comp >> 20)) MiB compressed, $((raw >> 20)) MiB of tar, $entries entries; on tmpfs, $n runs, medians"

# --- cold unpack to a bundle: umoci unpack vs berth image unpack ---------------------------
# cpu CMD...: runs CMD and prints the CPU time (user+sys, ms) it and its children used.
cpu() { local TIMEFORMAT='%3U %3S'; { time "$@" >/dev/null 2>&1; } 2>&1 | awk '{printf "%d\n", ($1+$2)*1000}'; }
u=() b=() uc=() bc=()
for i in $(seq "$n"); do
	t=$(date +%s%N); umoci unpack --image img:bench "u$i" >/dev/null; u+=("$(ms "$t")")
	rm -rf "u$i"
	t=$(date +%s%N); "$berth" image unpack img:bench "b$i"; b+=("$(ms "$t")")
	rm -rf "b$i"
	uc+=("$(cpu umoci unpack --image img:bench "u$i")"); rm -rf "u$i"
	bc+=("$(cpu "$berth" image unpack img:bench "b$i")"); rm -rf "b$i"
done
um=$(printf '%s\n' "${u[@]}" | median)
bm=$(printf '%s\n' "${b[@]}" | median)
echo "cold unpack to a bundle:  umoci unpack $um ms, berth image unpack $bm ms  (berth $(awk "BEGIN{printf \"%.1f\", $um/$bm}")x faster)"
ucm=$(printf '%s\n' "${uc[@]}" | median)
bcm=$(printf '%s\n' "${bc[@]}" | median)
echo "  CPU time (user+sys):    umoci unpack $ucm ms, berth image unpack $bcm ms  (berth $(awk "BEGIN{printf \"%.1f\", $ucm/$bcm}")x less)"

# --- the layer store: cold (empty store) and warm (every layer stored) ---------------------
c=() w=()
for i in $(seq "$n"); do
	t=$(date +%s%N); "$berth" --root "root$i" image load img:bench >/dev/null; c+=("$(ms "$t")")
	t=$(date +%s%N); "$berth" --root "root$i" image load img:bench >/dev/null; w+=("$(ms "$t")")
	rm -rf "root$i"
done
cm=$(printf '%s\n' "${c[@]}" | median)
echo "layer store, cold (berth image load, layers applied in parallel): $cm ms  ($(awk "BEGIN{printf \"%.1f\", $um/$cm}")x faster than umoci unpack)"
echo "layer store, warm (all layers stored, nothing applied): $(printf '%s\n' "${w[@]}" | median) ms"

# --- run --image (layers stored) vs run of a plain bundle ----------------------------------
umoci init --layout bb >/dev/null
umoci new --image bb:bb
umoci insert --image bb:bb bundle/rootfs / >/dev/null
"$berth" --root root-run image load bb:bb >/dev/null
"$berth" --root root-run image load img:bench >/dev/null
p=() q=() r=()
for i in $(seq "$runs"); do
	t=$(date +%s%N); "$berth" --root root-run run --bundle bundle "plain$i" >/dev/null; p+=("$(msf "$t")")
	t=$(date +%s%N); "$berth" --root root-run run --image bb:bb "img$i" true >/dev/null; q+=("$(msf "$t")")
	t=$(date +%s%N); "$berth" --root root-run run --image img:bench "big$i" true >/dev/null; r+=("$(msf "$t")")
done
pm=$(printf '%s\n' "${p[@]}" | median)
qm=$(printf '%s\n' "${q[@]}" | median)
# Paired: each run --image against the plain run just before it (the same moment's load),
# the median of those ratios; steadier than the ratio of the medians on a shared machine.
pr=$(for i in "${!p[@]}"; do awk -v a="${q[$i]}" -v b="${p[$i]}" 'BEGIN { printf "%.4f\n", a / b }'; done | median)
echo "run (median of $runs): plain busybox bundle $pm ms; run --image of busybox $qm ms ($(awk "BEGIN{printf \"%.2f\", $qm/$pm}")x; paired $(awk "BEGIN{printf \"%.2f\", $pr}")x); run --image of the $nl-layer image $(printf '%s\n' "${r[@]}" | median) ms"
