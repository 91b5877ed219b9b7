package guest

import (
	"strings"
	"testing"
)

func TestCgroupV2Machine(t *testing.T) {
	ctl := cg(t, "", "cgroup.controllers")
	for _, c := range []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"} {
		if !strings.Contains(" "+ctl+" ", " "+c+" ") {
			t.Errorf("controller %s missing from %q", c, ctl)
		}
	}
	e := newEnv(t, "sh", "-c", "echo hello; cat /proc/self/cgroup")
	e.spec.Linux.CgroupsPath = "/berth-vm/cg2-smoke"
	r := e.run("cg2-smoke")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hello\n") {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("inside: %s", r.stdout)
}
