#!/usr/bin/env bash
# bench/counts.sh (run by make bench): what one container costs in system calls, counted with
# strace -f (counts do not move with the machine's load, times do): one `run` (create, the
# init, wait and delete in one process tree), then `start` and `delete` of a created
# container, of a busybox `true` bundle. "of berth": execs of the berth binary (berth itself,
# and the init, whose C stage starts no Go runtime). (A `create` alone is not traced: strace -f would
# follow its init, which outlives it.) See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$(realpath "${BERTH:-./berth}")
if ! command -v strace >/dev/null; then
	echo "counts: strace is missing (bash .ci/deps): skipped"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
BERTH=$berth bash scripts/mkbundle.sh "$work/bundle" true >/dev/null
root=$work/root
count() { # TRACE NAME
	local l
	l=$(grep -vE 'resumed>|^[0-9]+ +(\+\+\+|---)' "$1")
	printf '%-7s| %8s | %5s (%s) | %9s | %7s | %11s | %s / %s | %s / %s / %s\n' "$2" \
		"$(grep -c . <<<"$l")" \
		"$(grep -cE ' execve(at)?\(' <<<"$l")" \
		"$(grep -E ' execve(at)?\(' <<<"$l" | grep -vcE 'berth-wait|"/bin/|"true"')" \
		"$(grep -E ' (clone3?|fork|vfork)\(' <<<"$l" | grep -vc CLONE_THREAD)" \
		"$(grep -E ' clone3?\(' <<<"$l" | grep -c CLONE_THREAD)" \
		"$(grep -cE ' (mount|move_mount|fsmount|mount_setattr|open_tree|umount2)\(' <<<"$l")" \
		"$(grep -c ' openat2(' <<<"$l")" "$(grep -c ' readlinkat(' <<<"$l")" \
		"$(grep -cE ' mkdirat\(AT_FDCWD, "/sys/fs/cgroup' <<<"$l")" \
		"$(grep -cE ' openat\(.*"/sys/fs/cgroup/.*O_WRONLY' <<<"$l")" \
		"$(grep -cE ' (unlinkat|rmdir)\(.*"/sys/fs/cgroup' <<<"$l")"
}
echo "system calls of one container (strace -f)"
echo "       | syscalls | execs (of berth) | processes | threads | mount calls | openat2 / readlinkat | cgroup mkdir / writes / rmdir"
id=counts-$$ # the cgroup path is /berth/<id>: unique on a shared host
strace -f -qq -o "$work/run" "$berth" --root "$root" run --bundle "$work/bundle" "$id-r" >/dev/null
count "$work/run" run
"$berth" --root "$root" create --bundle "$work/bundle" "$id-s" >/dev/null
strace -f -qq -o "$work/start" "$berth" --root "$root" start "$id-s"
count "$work/start" start
sleep 0.2
strace -f -qq -o "$work/delete" "$berth" --root "$root" delete "$id-s"
count "$work/delete" delete
