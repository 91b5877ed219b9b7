#!/bin/bash
# Runs every Go fuzz target for FUZZTIME each (default 2m), one worker at a time, and prints
# the executions per target. A failure leaves its input in the package's testdata/fuzz/TARGET/
# (commit it with the fix: it is then a regression case that plain `go test` runs).
# FUZZ='regex' picks targets by "package target".
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-2m}
FILTER=${FUZZ:-.}
targets=(
	"./internal/mountinfo FuzzParse" "./internal/mountinfo FuzzRoundTrip" "./internal/specjson FuzzSpec" "./internal/specjson FuzzSpecShaped" "./internal/specjson FuzzImage" "./internal/specjson FuzzState"
	"./internal/oci FuzzDigest"
	"./libcontainer FuzzLoadSpec" "./libcontainer FuzzSpecField"
	"./image FuzzApplyLayer" "./image FuzzApplyEntries" "./image FuzzResolve" "./image FuzzArchive"
	"./cmd/berth FuzzUpdateResources" "./cmd/berth FuzzParseSize"
	"./seccomp FuzzCompile"
)
# The differential fuzzing against libseccomp needs its headers (libseccomp-dev).
if pkg-config --exists libseccomp 2>/dev/null; then
	targets+=("./seccomp FuzzLibseccomp libseccomp")
else
	echo "fuzz: libseccomp-dev not installed: FuzzLibseccomp skipped" >&2
fi
status=0
summary=()
for t in "${targets[@]}"; do
	read -r pkg name tags <<<"$t"
	[[ "$pkg $name" =~ $FILTER ]] || continue
	log=$(mktemp)
	# Go's fuzzing coordinator can fail a run with "context deadline exceeded" when a worker
	# does not answer in time as -fuzztime ends (a loaded machine), with no failing input
	# found: that run is repeated, at most twice. A real failure writes its input
	# ("Failing input written to") and is never repeated.
	for try in 1 2 3; do
		CGO_ENABLED=1 $GO test -tags "${tags:-}" -run XXX -fuzz "^$name\$" -fuzztime "$FUZZTIME" \
			-fuzzminimizetime 10s -parallel 1 "$pkg" >"$log" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && [ $try -lt 3 ] && grep -q 'context deadline exceeded' "$log" &&
			! grep -q 'Failing input written to' "$log"; then
			echo "fuzz: $pkg $name: the fuzzing coordinator's deadline, no failing input: again" >&2
			continue
		fi
		break
	done
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	if [ $rc -ne 0 ]; then
		status=1
		grep -v '^fuzz: elapsed' "$log" | tail -20 >&2
		summary+=("FAIL $pkg $name: ${execs:-0} execs")
	else
		summary+=("ok   $pkg $name: ${execs:-0} execs in $FUZZTIME")
	fi
	rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit $status
