package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/cgroups"
)

// setCgroupsPath sets linux.cgroupsPath in a bundle's config.json, keeping every other field
// as it was written.
func setCgroupsPath(t *testing.T, bundle, path string) {
	t.Helper()
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		cfg["linux"].(map[string]any)["cgroupsPath"] = path
	})
}

// exec --cgroup (runc 1.1): the process joins a group below the container's, in every
// hierarchy or per controller; runc's syntax and refusals.
func TestExecSubCgroupV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	bundle := runcSpecBundle(t, "sleep", "100")
	setCgroupsPath(t, bundle, "/berth-test-execcg/e1")
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(func() {
		e.cleanup()
		removeTestGroups("berth-test-execcg")
	})
	e.mustBerth("run", "-d", "--bundle", bundle, "e1")

	for _, c := range []struct{ arg, want string }{
		{"..", ".. is not a sub cgroup path"},
		{"sub/../../x", "sub/../../x is not a sub cgroup path"},
		{"memory:..", ".. is not a sub cgroup path"},
		{"nonexistent", "adding pid to cgroups: stat /sys/fs/cgroup/"},
		{"cpu:nonexistent", "/sys/fs/cgroup/cpu/berth-test-execcg/e1/nonexistent/cgroup.procs: no such file or directory"},
		{"whaaat:/", "unknown controller whaaat"},
		{"a:b:c", "invalid --cgroup argument: a:b:c"},
	} {
		r := e.berth("exec", "--cgroup", c.arg, "e1", "true")
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("exec --cgroup %s: exit %d, %q; want an error with %q", c.arg, r.code, r.stderr, c.want)
		}
	}
	if r := e.berth("exec", "--cgroup", "memory:a", "--cgroup", "b", "e1", "true"); r.code == 0 || !strings.Contains(r.stderr, "missing <controller>: prefix") {
		t.Errorf("a bare path with another --cgroup: exit %d, %q", r.code, r.stderr)
	}

	// Explicit top level: the container's own group everywhere, as without the flag.
	for _, args := range [][]string{{"exec", "e1"}, {"exec", "--cgroup", "/", "e1"}} {
		r := e.mustBerth(append(args, "cat", "/proc/self/cgroup")...)
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasSuffix(l, ":/berth-test-execcg/e1") {
				t.Errorf("%v: %q", args, l)
			}
		}
	}

	for _, d := range []string{"memory/berth-test-execcg/e1/submem", "cpu/berth-test-execcg/e1/subcpu", "cpuacct/berth-test-execcg/e1/subcpu"} {
		if err := os.MkdirAll(filepath.Join("/sys/fs/cgroup", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// One value may name several controllers: the comma is not a flag separator.
	r := e.mustBerth("exec", "--cgroup", "memory:submem", "--cgroup", "cpu,cpuacct:subcpu", "e1", "cat", "/proc/self/cgroup")
	for _, want := range []string{":memory:/berth-test-execcg/e1/submem\n", ":cpu:/berth-test-execcg/e1/subcpu\n", ":cpuacct:/berth-test-execcg/e1/subcpu\n", ":pids:/berth-test-execcg/e1\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("exec --cgroup per controller: no %q in\n%s", want, r.stdout)
		}
	}
	// A path alone: every hierarchy, the memory one has the group, the others not.
	if r := e.berth("exec", "--cgroup", "submem", "e1", "true"); r.code == 0 || !strings.Contains(r.stderr, "/submem/cgroup.procs: no such file") {
		t.Errorf("exec --cgroup submem: exit %d, %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "--force", "e1")
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test-execcg/e1"); err == nil {
		t.Error("the container's group (with the sub-groups) is left after delete --force")
	}
}
