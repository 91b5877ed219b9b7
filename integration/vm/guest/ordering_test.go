package guest

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Two orderings libcontainer must keep, found in this VM.

// With a cgroup namespace, the container sees its own group as the root ("0::/"): the init's
// constructor unshares CLONE_NEWCGROUP only after it joined the container's group.
func TestCgroupNamespaceRoot(t *testing.T) {
	e := newEnv(t, "cat", "/proc/self/cgroup")
	e.spec.Linux.CgroupsPath = "/cg2/cg2-cgns"
	r := e.run("cg2-cgns")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.TrimSpace(r.stdout); got != "0::/" {
		t.Errorf("inside a cgroup namespace the container sees %q, want \"0::/\"", got)
	}
}

// pids.max below the number of threads of berth's Go init: the limits are written once the init
// is ready (as runc does at procReady), so that only the user's process counts.
func TestPidsMaxOne(t *testing.T) {
	e := newEnv(t, "echo", "one process")
	e.spec.Linux.CgroupsPath = "/cg2/cg2-pids1"
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(1)}
	r := e.run("cg2-pids1")
	if r.code != 0 {
		msg := r.stderr
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		t.Fatalf("pids.max 1: exit %d: %s", r.code, msg)
	}
	if r.stdout != "one process\n" {
		t.Errorf("output %q", r.stdout)
	}
}
