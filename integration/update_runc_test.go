package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/cgroups"
)

// cgFile reads a file of the group at path in a v1 hierarchy.
func cgFile(t *testing.T, hierarchy, path, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", hierarchy, path, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

// runcLimitsBundle is a `runc spec` bundle with update.bats's starting limits.
func runcLimitsBundle(t *testing.T, cgPath string, cpu map[string]any) string {
	bundle := runcSpecBundle(t, "sleep", "1000")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		linux := cfg["linux"].(map[string]any)
		linux["cgroupsPath"] = cgPath
		res := linux["resources"].(map[string]any)
		res["memory"] = map[string]any{"limit": 33554432, "reservation": 25165824}
		res["cpu"] = cpu
		res["pids"] = map[string]any{"limit": 20}
	})
	return bundle
}

// Each runc update flag alone changes its file, and one update may lift memory to unlimited
// after a memory+swap limit was set (runc lifts swap with it).
func TestUpdateSingleFlagsV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	const cg = "/berth-test-upd2/u1"
	bundle := runcLimitsBundle(t, cg, map[string]any{"shares": 100, "quota": 500000, "period": 1000000})
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(func() {
		e.cleanup()
		removeTestGroups("berth-test-upd2")
	})
	e.mustBerth("run", "-d", "--bundle", bundle, "u1")
	cpu := func() string {
		return cgFile(t, "cpu", cg, "cpu.cfs_quota_us") + " " + cgFile(t, "cpu", cg, "cpu.cfs_period_us") + " " + cgFile(t, "cpu", cg, "cpu.shares")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpu-period", "900000"}, "500000 900000 100"},
		{[]string{"--cpu-quota", "600000"}, "600000 900000 100"},
		{[]string{"--cpu-quota", "-1"}, "-1 900000 100"},
		{[]string{"--cpu-share", "200"}, "-1 900000 200"},
		{[]string{"--cpu-period", "900000", "--cpu-quota", "600000", "--cpu-share", "300"}, "600000 900000 300"},
		{[]string{"--cpu-quota", "-1", "--cpu-period", "100000"}, "-1 100000 300"},
	} {
		e.mustBerth(append(append([]string{"update"}, c.args...), "u1")...)
		if got := cpu(); got != c.want {
			t.Errorf("update %v: quota period shares %q, want %q", c.args, got, c.want)
		}
	}
	if n, _ := os.ReadFile("/sys/devices/system/cpu/online"); strings.TrimSpace(string(n)) != "0" {
		e.mustBerth("update", "--cpuset-cpus", "1", "u1")
		if got := cgFile(t, "cpuset", cg, "cpuset.cpus"); got != "1" {
			t.Errorf("--cpuset-cpus 1: %q", got)
		}
	}
	e.mustBerth("update", "--memory", "50M", "u1")
	if got := cgFile(t, "memory", cg, "memory.limit_in_bytes"); got != "52428800" {
		t.Errorf("--memory 50M: %s", got)
	}
	e.mustBerth("update", "--pids-limit", "-1", "u1")
	if got := cgFile(t, "pids", cg, "pids.max"); got != "max" {
		t.Errorf("--pids-limit -1: %s", got)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cg, "memory.memsw.limit_in_bytes")); err != nil {
		t.Log("no swap accounting: memory+swap part left out")
		return
	}
	unlimited := cgFile(t, "memory", "", "memory.limit_in_bytes")
	e.mustBerth("update", "--memory-swap", "96468992", "u1")
	e.mustBerth("update", "--memory", "-1", "u1")
	for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
		if got := cgFile(t, "memory", cg, f); got != unlimited {
			t.Errorf("after --memory -1: %s = %s, want %s", f, got, unlimited)
		}
	}
	if res := storedResources(t, e, "u1"); res.Memory == nil || *res.Memory.Swap != -1 || *res.Memory.Limit != -1 {
		t.Errorf("recorded memory after --memory -1: %+v", res.Memory)
	}
	e.mustBerth("update", "--memory", "30M", "--memory-swap", "50M", "u1")
	e.mustBerth("update", "--memory", "60M", "--memory-swap", "80M", "u1")
	if l, s := cgFile(t, "memory", cg, "memory.limit_in_bytes"), cgFile(t, "memory", cg, "memory.memsw.limit_in_bytes"); l != "62914560" || s != "83886080" {
		t.Errorf("memory past the old memory+swap: limit %s memsw %s", l, s)
	}
}

// In a pod group with a CPU limit, lowering a container's period with its quota works: the
// new period with the old quota would exceed the pod's limit, so the period is written again
// after the quota (runc's order). The same holds for the real-time period and runtime.
func TestUpdatePodCPUV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	const pod = "/berth-test-upd2/pod"
	const cg = pod + "/u2"
	t.Cleanup(func() {
		pods, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", pod))
		for _, d := range append(pods, filepath.Join("/sys/fs/cgroup/unified", pod)) {
			os.Remove(d)
		}
		removeTestGroups("berth-test-upd2")
	})
	podDir := filepath.Join("/sys/fs/cgroup/cpu", pod)
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(podDir, "cpu.cfs_quota_us"), []byte("50000"), 0); err != nil {
		t.Fatal(err)
	}
	cpu := map[string]any{"shares": 100, "quota": 500000, "period": 1000000}
	// A real-time budget for the pod (20%), taken from the root's if it has that much left.
	rt := true
	for _, p := range []string{filepath.Dir(podDir), podDir} {
		if err := os.WriteFile(filepath.Join(p, "cpu.rt_runtime_us"), []byte("200000"), 0); err != nil {
			t.Logf("no real-time budget for the pod (%v): real-time part left out", err)
			rt = false
			break
		}
	}
	if rt {
		cpu["realtimePeriod"], cpu["realtimeRuntime"] = 1000000, 100000
	}
	bundle := runcLimitsBundle(t, cg, cpu)
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	e.mustBerth("run", "-d", "--bundle", bundle, "u2")

	if r := e.berth("update", "--cpu-quota", "600000", "u2"); r.code == 0 {
		t.Error("a quota above the pod's limit was accepted")
	}
	e.mustBerth("update", "--cpu-period", "10000", "--cpu-quota", "3000", "u2")
	if q, p := cgFile(t, "cpu", cg, "cpu.cfs_quota_us"), cgFile(t, "cpu", cg, "cpu.cfs_period_us"); q != "3000" || p != "10000" {
		t.Errorf("quota %s period %s, want 3000 10000", q, p)
	}
	if !rt {
		return
	}
	e.mustBerth("update", "--cpu-rt-period", "100000", "--cpu-rt-runtime", "10000", "u2")
	if p, r := cgFile(t, "cpu", cg, "cpu.rt_period_us"), cgFile(t, "cpu", cg, "cpu.rt_runtime_us"); p != "100000" || r != "10000" {
		t.Errorf("rt period %s runtime %s, want 100000 10000", p, r)
	}
	e.mustBerth("update", "--cpu-rt-period", "900001", "--cpu-rt-runtime", strconv.Itoa(60001), "u2")
	if p, r := cgFile(t, "cpu", cg, "cpu.rt_period_us"), cgFile(t, "cpu", cg, "cpu.rt_runtime_us"); p != "900001" || r != "60001" {
		t.Errorf("rt period %s runtime %s, want 900001 60001", p, r)
	}
	e.mustBerth("delete", "--force", "u2")
	// Give the budget back to the root.
	for _, p := range []string{podDir, filepath.Dir(podDir)} {
		os.WriteFile(filepath.Join(p, "cpu.rt_runtime_us"), []byte("0"), 0)
	}
}
