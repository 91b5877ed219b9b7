#!/usr/bin/env bash
# The OCI runtime-tools validation suite (github.com/opencontainers/runtime-tools v0.9.0, its
# 58 programs under validation/), run against berth and, in the same run and the same way,
# against runc for reference. Root needed. `make conformance` runs this after `make build`.
#
#   bash conformance/run.sh                      # every program, berth and runc
#   bash conformance/run.sh hooks 'linux_ns_.*'  # only programs whose names match (bash regex)
#
# Environment:
#   OUT=/tmp/berth-conformance  where the TAP output, logs and summary go (emptied first)
#   RUNTIMES="berth runc"       runtimes to run, in order; any of berth, runc, crun
#   BERTH=./berth               the berth binary under test
#   TIMEOUT=60                  seconds per program and runtime (some programs hang)
#   STRICT=1                    exit 1 if berth fails a program that runc passes and that
#                               conformance/known does not list (as flaky or a tracked gap)
#
# The suite is pinned by conformance/go.mod ("tool" lines) and fetched through the Go module
# proxy. The suite's last release, v0.9.0, has no go.mod and its Godeps commits are not on the
# proxy, so the nearest releases are pinned: runtime-spec v1.0.2 (v1.0.1 lacks Spec.VM used by
# generate/, v1.1.0 types State.Status and breaks validation/util) and selinux v1.11.0 (the
# last with label.FileLabel, used by runtimetest).
#
# How the programs are run is how the suite's own `make localvalidation` runs them, minus
# node-tap: each program with RUNTIME=<runtime> in a directory holding `runtimetest` and
# `rootfs-amd64.tar.gz`; it writes TAP on stdout and calls `<runtime> create/start/state/kill/
# delete` itself. A program passes (PASS) with exit status 0, as many test points as planned and
# no `not ok` (other than # TODO/# SKIP), or (PASS0, "pass (no points)") with exit status 0, no
# test point and no error diagnostic nor WARNING: the *_fail and hook programs report success
# so. node-tap, which the suite's `make localvalidation` uses, counts the latter as "pending"
# and does not see the hook programs' error diagnostics; its view is printed too.
#
# Each runtime is reached through a small wrapper that adds `--root $OUT/state/<runtime>`, so
# leftovers are ours to clean and never mixed with other containers on the machine, and logs
# each call. Between programs, leftover containers are force-deleted, the suite's cgroups
# (cgrouptest, testdir) removed, mounts left under its bundles unmounted and the bundles deleted,
# so that one program (or runtime) cannot affect the next.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
OUT="${OUT:-/tmp/berth-conformance}"
RUNTIMES="${RUNTIMES:-berth runc}"
BERTH="${BERTH:-$repo/berth}"
TIMEOUT="${TIMEOUT:-60}"
STRICT="${STRICT:-0}"

die() { echo "conformance: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root"
case "$OUT" in /|/tmp|/run|"$repo") die "refusing OUT=$OUT (it is emptied first)";; esac
[[ "$BERTH" = /* ]] || BERTH="$PWD/$BERTH"

start_all=$(date +%s)
# An earlier run that was interrupted may have left mounts (proc, sysfs) under $OUT/tmp.
for m in $(awk -v d="$OUT/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
rm -rf --one-file-system "$OUT" && mkdir -p "$OUT"/{suite,work,bin,state,tmp} || die "cannot create $OUT"

# --- build the suite ---------------------------------------------------------------------
echo "conformance: building the validation suite into $OUT/suite"
(cd "$here" && CGO_ENABLED=0 go build -trimpath -o "$OUT/suite/" tool) || die "building the suite failed"
suitedir="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/opencontainers/runtime-tools)"
suitever="$(cd "$here" && go list -m -f '{{.Version}}' github.com/opencontainers/runtime-tools)"
[ -f "$suitedir/rootfs-amd64.tar.gz" ] || die "no rootfs-amd64.tar.gz in $suitedir"
cp "$OUT/suite/runtimetest" "$suitedir/rootfs-amd64.tar.gz" "$OUT/work/"
chmod u+w "$OUT/work/"*
mapfile -t programs < <(cd "$suitedir/validation" && ls -d */ | sed 's|/$||' | grep -vx util | sort)
if (($#)); then
	sel=()
	for p in "${programs[@]}"; do for pat in "$@"; do [[ $p =~ ^($pat)$ ]] && { sel+=("$p"); break; }; done; done
	programs=("${sel[@]}")
fi
((${#programs[@]})) || die "no program matches: $*"

# --- runtimes ----------------------------------------------------------------------------
declare -A rtbin rtver
for rt in $RUNTIMES; do
	case $rt in
	berth) bin="$BERTH" ;;
	runc | crun) bin="$(command -v "$rt")" || die "$rt not installed (bash .ci/deps)" ;;
	*) die "unknown runtime $rt" ;;
	esac
	[ -x "$bin" ] || die "$rt: $bin is not executable (make build)"
	rtver[$rt]="$("$bin" --version 2>&1 | head -1)"
	mkdir -p "$OUT/state/$rt" "$OUT/$rt"
	# The wrapper logs each call (arguments, exit status) to $OUT/<runtime>/<program>.calls; the
	# runtime keeps the suite's stdin/stdout/stderr, as it must (create hands them on).
	printf '#!/bin/bash\n%q --root %q "$@"\nrc=$?\necho "$rc $*" >>"${CONFORMANCE_CALLS:-/dev/null}"\nexit $rc\n' \
		"$bin" "$OUT/state/$rt" >"$OUT/bin/$rt"
	chmod +x "$OUT/bin/$rt"
	rtbin[$rt]="$OUT/bin/$rt"
done

cleanup() { # $1 runtime: remove whatever the last program left behind
	local rt=$1 id
	for id in $("${rtbin[$rt]}" list -q 2>/dev/null); do
		"${rtbin[$rt]}" kill "$id" KILL >/dev/null 2>&1
		"${rtbin[$rt]}" delete --force "$id" >/dev/null 2>&1 || echo "conformance: $rt: could not delete leftover $id" >&2
	done
	find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -depth -type d \( -path '*/cgrouptest*' -o -path '*/testdir' \) \
		-exec rmdir {} + 2>/dev/null
	# A container without a mount namespace (linux_ns_itype) has its rootfs mounts (proc, sysfs,
	# /dev...) made in ours, and runc leaves them there: unmount whatever is under the bundles
	# before removing anything, and never let rm cross into another file system.
	local m leaked=0
	for m in $(awk -v d="$OUT/tmp/$rt/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null && leaked=$((leaked + 1))
	done
	((leaked)) && echo "conformance: $rt: unmounted $leaked mounts left on the host under $OUT/tmp/$rt (after ${last[$rt]:-?})" |
		tee -a "$OUT/leaks.log" >&2
	# What the runtime printed on create (the suite keeps it in the bundle, and deletes the
	# bundle unless it exited early): kept beside the TAP, for the analysis.
	local f
	for f in "$OUT/tmp/$rt"/*/stderr-* "$OUT/tmp/$rt"/*/stdout-*; do
		[ -s "$f" ] && [ -n "${last[$rt]:-}" ] && { echo "== $f"; cat "$f"; } >>"$OUT/$rt/${last[$rt]}.runtime-output"
	done 2>/dev/null
	rm -rf --one-file-system "${OUT:?}/tmp/$rt"
}

# tapsum FILE: prints "ok notok todo planned bailout errdiag" for a TAP stream. Only the first
# plan counts (linux_cgroups_cpus prints a second, empty TAP stream after its first, as
# node-tap's parser also ignores). errdiag counts "error" keys in YAML diagnostics: with no test
# point, that is how the hook programs report a failure (only a diagnostic and 1..0); after a
# test point it is often the expected error of a passing check, so it is not counted then.
tapsum() {
	awk '
	/^1\.\.[0-9]+/ { if (!planned) { plan = substr($1, 4) + 0; planned = 1 }; next }
	/^Bail out!/   { bail = 1; next }
	/^not ok/      { if ($0 ~ /#[ \t]*[Tt][Oo][Dd][Oo]/) todo++; else if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) ok++; else nok++; next }
	/^ok/          { ok++; next }
	/^[ \t]+"error":/ { err++; next }
	END { printf "%d %d %d %s %d %d\n", ok, nok, todo, planned ? plan : "-", bail, err }
	' "$1"
}

# --- run ---------------------------------------------------------------------------------
summary="$OUT/summary.tsv"
printf 'program\truntime\tresult\tok\tnot_ok\tplanned\terror_diagnostics\texit\tseconds\tnode_tap\n' >"$summary"
declare -A result detail ntap last
declare -A npass npass0 nfail ntimeout tapok tappend tapfail
for rt in $RUNTIMES; do
	npass[$rt]=0 npass0[$rt]=0 nfail[$rt]=0 ntimeout[$rt]=0 tapok[$rt]=0 tappend[$rt]=0 tapfail[$rt]=0
done
echo "conformance: ${#programs[@]} programs x ($RUNTIMES), ${TIMEOUT}s timeout each; TAP in $OUT/<runtime>/"
for p in "${programs[@]}"; do
	for rt in $RUNTIMES; do
		cleanup "$rt"
		mkdir -p "$OUT/tmp/$rt"
		t0=$(date +%s.%N)
		(cd "$OUT/work" && TMPDIR="$OUT/tmp/$rt" RUNTIME="${rtbin[$rt]}" CONFORMANCE_CALLS="$OUT/$rt/$p.calls" \
			timeout -k 10 "$TIMEOUT" "$OUT/suite/$p" >"$OUT/$rt/$p.tap" 2>"$OUT/$rt/$p.stderr" </dev/null)
		rc=$?
		last[$rt]=$p
		secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		read -r ok nok todo planned bail errdiag < <(tapsum "$OUT/$rt/$p.tap")
		n=$((ok + nok + todo))
		warn=$(grep -c '^WARNING' "$OUT/$rt/$p.stderr")
		# Verdict. PASS: exit 0, test points as planned, none failed. PASS0: exit 0 and no test
		# point at all, no error diagnostic and no WARNING: how the *_fail programs (the runtime
		# had to refuse the config) and the hook programs report success. FAIL: anything else.
		if ((rc == 124 || rc == 137)); then
			res=TIMEOUT why="TIMEOUT ${TIMEOUT}s"
		elif ((rc != 0)); then
			res=FAIL why="FAIL exit $rc"
			((n)) && why="FAIL $ok/$n, exit $rc"
		elif ((n == 0)); then
			if ((errdiag || warn || bail)); then
				res=FAIL why="FAIL no points, $((errdiag ? errdiag : warn)) $( ((errdiag)) && echo error || echo warning)"
			else
				res=PASS0 why="pass (no points)"
			fi
		elif ((nok == 0 && bail == 0)) && [ "$planned" != - ] && ((n == planned)); then
			res=PASS why="PASS $ok/$n"
		else
			res=FAIL why="FAIL $ok/$n"
			((nok == 0)) && why="FAIL $ok/$n, plan $planned"
		fi
		# What node-tap (the suite's own runner) would call this file: passing, pending (exit 0,
		# no test point) or failing. Reported beside our verdict for comparison with its numbers.
		if ((rc != 0 || nok || bail)) || { ((n)) && [ "$planned" != - ] && ((n != planned)); }; then
			nt=failing tapfail[$rt]=$((tapfail[$rt] + 1))
		elif ((n == 0)); then
			nt=pending tappend[$rt]=$((tappend[$rt] + 1))
		else
			nt=passing tapok[$rt]=$((tapok[$rt] + 1))
		fi
		case $res in
		PASS) npass[$rt]=$((npass[$rt] + 1)) ;;
		PASS0) npass0[$rt]=$((npass0[$rt] + 1)) ;;
		FAIL) nfail[$rt]=$((nfail[$rt] + 1)) ;;
		TIMEOUT) ntimeout[$rt]=$((ntimeout[$rt] + 1)) ;;
		esac
		result[$p,$rt]=$res detail[$p,$rt]=$why ntap[$p,$rt]=$nt
		printf '%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n' "$p" "$rt" "$res" "$ok" "$nok" "$planned" "$errdiag" "$rc" "$secs" "$nt" >>"$summary"
		printf '  %-36s %-6s %-28s %5ss\n' "$p" "$rt" "$why" "$secs"
	done
done
for rt in $RUNTIMES; do cleanup "$rt"; done

# --- summary -----------------------------------------------------------------------------
passed() { [[ ${result[$1,$2]} = PASS* ]]; }
elapsed=$(($(date +%s) - start_all))
regress=() gains=() both=0
if [[ " $RUNTIMES " = *" berth "* && " $RUNTIMES " = *" runc "* ]]; then
	both=1
	for p in "${programs[@]}"; do
		passed "$p" runc && ! passed "$p" berth && regress+=("$p")
		passed "$p" berth && ! passed "$p" runc && gains+=("$p")
	done
fi
{
	echo
	echo "OCI runtime-tools $suitever validation suite, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(
		[ -f /sys/fs/cgroup/cgroup.controllers ] && echo cgroup v2 || { [ -d /sys/fs/cgroup/unified ] && echo cgroup v1 hybrid || echo cgroup v1; }
	)"
	for rt in $RUNTIMES; do echo "  $rt: ${rtver[$rt]}"; done
	echo
	printf '%-32s' program
	for rt in $RUNTIMES; do printf ' %-28s' "$rt"; done
	echo
	for p in "${programs[@]}"; do
		printf '%-32s' "$p"
		for rt in $RUNTIMES; do printf ' %-28s' "${detail[$p,$rt]}"; done
		echo
	done
	echo
	printf '%-32s' "passed (of ${#programs[@]})"
	for rt in $RUNTIMES; do printf ' %-28s' "$((npass[$rt] + npass0[$rt])) (${npass0[$rt]} without points)"; done
	echo
	printf '%-32s' "failed / timed out"
	for rt in $RUNTIMES; do printf ' %-28s' "${nfail[$rt]} / ${ntimeout[$rt]}"; done
	echo
	printf '%-32s' "node-tap: passing/pending/fail"
	for rt in $RUNTIMES; do printf ' %-28s' "${tapok[$rt]} / ${tappend[$rt]} / ${tapfail[$rt]}"; done
	echo
	if ((both)); then
		echo
		echo "runc passes, berth does not: ${#regress[@]}${regress[*]:+ (${regress[*]})}"
		echo "berth passes, runc does not: ${#gains[@]}${gains[*]:+ (${gains[*]})}"
		echo "known to race, either way from run to run: $(awk '$2 == "flaky" { printf "%s ", $1 }' "$here/known")"
	fi
	echo "took ${elapsed}s; TAP and stderr per program in $OUT/<runtime>/, table in $OUT/summary.tsv"
} | tee "$OUT/summary.txt"

# STRICT=1: fail on a program runc passes and berth does not, unless conformance/known lists it.
if [ "$STRICT" = 1 ] && ((both)); then
	new=()
	for p in "${regress[@]}"; do
		grep -q "^$p[[:space:]]" "$here/known" 2>/dev/null || new+=("$p")
	done
	if ((${#new[@]})); then
		echo "conformance: STRICT: berth fails what runc passes, not listed in conformance/known: ${new[*]}" >&2
		exit 1
	fi
	echo "conformance: STRICT: no unlisted program that runc passes and berth fails"
fi
exit 0
