# berth: see README.md. Everything here works from a fresh clone on Debian as root.
PREFIX  ?= /usr/local
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Stripped: a smaller binary maps and starts faster. scripts/build.sh adds the rest: static
# (the waiting stage of a created container runs inside the container's root, where no
# dynamic loader is), musl when musl-gcc is there, and the tags (urfave_cli_no_docs: leave out
# urfave/cli's man-page generator, whose package initialisation every berth process would pay).
LDFLAGS := -s -w -X main.commit=$(VERSION)

.PHONY: build test bench install demo clean labs lab
build: berth

berth: $(shell find . -name '*.go' -o -name '*.c' -o -name '*.h' | grep -v _test.go) go.mod go.sum scripts/build.sh
	GO=$(GO) bash scripts/build.sh berth "$(LDFLAGS)"

# The whole suite: unit tests, integration tests on real containers (root needed), the
# cgroup v2 tests inside a qemu VM (integration/vm), and the runtime-tools conformance suite.
# Last, three suites berth did not write, each against berth and runc in the same run: the OCI
# runtime-tools suite, runc's own integration suite, and the CRI suite (critest) through
# containerd (conformance/RESULTS.md, conformance/runc/RESULTS.md, conformance/cri/RESULTS.md):
# each fails on a test runc passes and berth does not. The short soak (TestSoak: 60 containers,
# 4 workers) runs in `go test ./...`; `make soak` is its full size.
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME_SHORT)
	$(MAKE) conformance STRICT=1
	$(MAKE) runc-suite STRICT=1
	$(MAKE) cri-suite STRICT=1
	$(MAKE) bench-smoke

bench: build
	bash bench/run.sh

# make bench's start-up table (bench/start) inside the cgroup v2 VM of integration/vm: qemu
# TCG, so read only the ratios to runc and crun, which are what a cgroup v2 host sees.
# BENCH_N containers a runtime (default 10), BENCH_BASE an older static build beside it;
# several minutes.
.PHONY: bench-vm
bench-vm:
	BERTH_VM_BENCH=1 $(GO) test -count=1 -v -timeout 30m -run '^TestBenchInVM$$' ./integration/vm/

# Every benchmark once, two containers a runtime and one image unpack (about 30 s): proves
# `make bench` still runs end to end (make test calls it); its figures mean nothing.
.PHONY: bench-smoke
bench-smoke: build
	BENCH_N=2 BENCH_IMAGE_N=1 bash bench/run.sh

# Every fuzz target (go test -fuzz) for FUZZTIME each, one worker (-parallel 1): the seed
# corpora (testdata/ of each package, and testdata/fuzz/ with every crash found, fixed) run in
# plain `go test` already; `make test` fuzzes each target for FUZZTIME_SHORT on top. Root (the
# layer fuzzers mknod, chown and mount a tmpfs). FUZZ='regex' on "package target" picks some.
FUZZTIME       ?= 2m
FUZZTIME_SHORT ?= 5s
.PHONY: fuzz
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

install: build
	install -D -m 0755 berth $(DESTDIR)$(PREFIX)/bin/berth

# The soak (integration/soak_test.go, TestSoak): SOAK_N containers from SOAK_WORKERS workers,
# each created, started, exec'd into now and then, paused, resumed, killed and deleted, one
# berth command SIGKILLed in a tenth of the cycles; then nothing may be left (state, mounts,
# cgroups, processes; descriptors of `run` and `exec -t` steady). Root; a few minutes.
SOAK_N       ?= 1000
SOAK_WORKERS ?= 8
.PHONY: soak
soak:
	BERTH_SOAK_N=$(SOAK_N) BERTH_SOAK_WORKERS=$(SOAK_WORKERS) $(GO) test -count=1 -timeout 60m -run 'TestSoak$$' -v ./integration/

# Builds a busybox bundle and runs it: the first thing to try.
demo: install
	bash scripts/demo.sh

clean:
	rm -rf berth .build internal/companion/payload/berth-full*

# The workshop labs (docs/labs): `make lab` walks a student through lab LAB (default 1) with the
# installed berth, step by step; `make labs` runs all six unattended with ./berth, each in a
# fresh directory and state root, and fails on a step whose output no longer matches its page
# (make test runs them too, as integration's TestLabs). Root.
LAB ?= 1
lab: install
	$(GO) run ./cmd/berth-labs docs/labs/$(LAB)-*.md

labs: build
	$(GO) run ./cmd/berth-labs -check -berth ./berth docs/labs/[0-9]*.md

# The OCI runtime-tools validation suite run against berth and, beside it, runc (root; 3-4.5 min).
# Results in /tmp/berth-conformance (OUT=...); STRICT=1 fails on a new gap to runc. See
# conformance/run.sh and conformance/RESULTS.md.
.PHONY: conformance
conformance: build
	bash conformance/run.sh

# runc's own integration suite (tests/integration/*.bats at v1.1.5), installed by
# conformance/runc/install.sh (.ci/deps runs it), against berth and runc (root; about 10 min).
# Results in /tmp/berth-runc-suite (OUT=...); STRICT=1 fails on a test runc passes and berth
# does not. See conformance/runc/run.sh and conformance/runc/RESULTS.md.
.PHONY: runc-suite
runc-suite: build
	bash conformance/runc/run.sh

# The CRI conformance suite (critest, cri-tools v1.34.0) against a private containerd 1.6 with a
# `runc` and a `berth` runtime handler, installed by conformance/cri/install.sh (.ci/deps runs it).
# Root. Results in /tmp/berth-cri-suite (OUT=...); STRICT=1 fails on a test that passes with runc
# and fails with berth. See conformance/cri/README.md.
.PHONY: cri-suite
cri-suite: build
	bash conformance/cri/run.sh
