package guest

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The VM is a pure cgroup v2 machine with every controller, and a container runs in the group
// its config names; --explain shows each cgroup file written with its value, and the device
// program.
func TestCgroupV2Machine(t *testing.T) {
	ctl := cg(t, "", "cgroup.controllers")
	for _, c := range []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"} {
		if !strings.Contains(" "+ctl+" ", " "+c+" ") {
			t.Errorf("controller %s missing from %q", c, ctl)
		}
	}
	e := newEnv(t, "sh", "-c", "echo hello; cat /proc/self/cgroup")
	e.spec.Linux.CgroupsPath = "/berth-vm/cg2-smoke"
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
	e.writeSpec()
	r := e.berth("--explain", "run", "--bundle", e.bundle, "cg2-smoke")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hello\n") {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"cgroups.writeFile", "/sys/fs/cgroup/berth-vm/cg2-smoke/memory.max = 67108864",
		"/sys/fs/cgroup/berth-vm/cgroup.subtree_control", "cgroups.setDevicesBPF",
	} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("--explain does not show %q:\n%s", want, r.stderr)
		}
	}
}
