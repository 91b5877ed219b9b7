package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/libcontainer"
)

// v1 hierarchies the update tests may leave a /berth-test-upd group in.
var updHierarchies = []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd", "hugetlb", "net_cls", "net_prio", "rdma", "unified"}

func cleanupUpdGroups() {
	for _, h := range updHierarchies {
		os.Remove(filepath.Join("/sys/fs/cgroup", h, "berth-test-upd"))
	}
}

func v1File(t *testing.T, controller, id, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "berth-test-upd", id, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

func storedResources(t *testing.T, e *env, id string) *specs.LinuxResources {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.root, id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s libcontainer.State
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s.Config.Linux.Resources
}

// berth update on a v1 host: runc's flags and --resources change the running container's
// files and its recorded config. (The same on v2 runs in integration/vm.)
func TestUpdateV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	defer cleanupUpdGroups()
	e := newEnv(t, "sleep", "100")
	mem, pids, shares := int64(64<<20), int64(50), uint64(512)
	e.spec.Linux.CgroupsPath = "/berth-test-upd/upd-1"
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "upd-1")

	e.mustBerth("update", "--memory", "128m", "--memory-reservation", "32M", "--cpu-shares", "1024",
		"--cpu-quota", "20000", "--cpu-period", "100000", "--pids-limit", "30", "--cpuset-cpus", "0", "upd-1")
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"cpu", "cpu.shares", "1024"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"pids", "pids.max", "30"},
		{"cpuset", "cpuset.cpus", "0"},
	} {
		if got := v1File(t, c.ctrl, "upd-1", c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}

	// memory+swap growing past the old memsw: berth orders the two writes.
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test-upd/upd-1/memory.memsw.limit_in_bytes"); err == nil {
		e.mustBerth("update", "--memory", "256m", "--memory-swap", "1g", "upd-1")
		if got := v1File(t, "memory", "upd-1", "memory.memsw.limit_in_bytes"); got != "1073741824" {
			t.Errorf("memsw = %s", got)
		}
		if got := v1File(t, "memory", "upd-1", "memory.limit_in_bytes"); got != "268435456" {
			t.Errorf("limit = %s", got)
		}
		e.mustBerth("update", "--memory", "2g", "--memory-swap", "4g", "upd-1")
		if got := v1File(t, "memory", "upd-1", "memory.limit_in_bytes"); got != "2147483648" {
			t.Errorf("limit after growing both = %s", got)
		}
	}

	// --resources: JSON merged into what is there; the other flags are ignored.
	cmd := exec.Command(berthBin, "--root", e.root, "update", "--resources", "-", "--pids-limit", "7", "upd-1")
	cmd.Stdin = strings.NewReader(`{"memory": {"limit": 100663296}, "pids": {"limit": 20}}`)
	if r := e.berthCmd(cmd); r.code != 0 {
		t.Fatalf("update --resources -: exit %d: %s", r.code, r.stderr)
	}
	if got := v1File(t, "memory", "upd-1", "memory.limit_in_bytes"); got != "100663296" {
		t.Errorf("after --resources: memory limit %s", got)
	}
	if got := v1File(t, "pids", "upd-1", "pids.max"); got != "20" {
		t.Errorf("after --resources: pids.max %s", got)
	}
	f := filepath.Join(t.TempDir(), "res.json")
	os.WriteFile(f, []byte(`{"cpu": {"shares": 256}, "futureField": 1}`), 0o644)
	if r := e.mustBerth("update", "-r", f, "upd-1"); !strings.Contains(r.stderr, "futureField") {
		t.Errorf("an unknown field is ignored without a warning: %q", r.stderr)
	}
	if got := v1File(t, "cpu", "upd-1", "cpu.shares"); got != "256" {
		t.Errorf("after -r FILE: cpu.shares %s", got)
	}

	m, err := cgroups.New("/berth-test-upd/upd-1", "upd-1")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := m.Stats(); err != nil || st.Memory.Usage.Limit != 100663296 || st.Pids.Limit != 20 || st.Pids.Current == 0 {
		t.Errorf("stats: %+v %v", st, err)
	}

	res := storedResources(t, e, "upd-1")
	switch {
	case res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 100663296:
		t.Errorf("state.json memory: %+v", res.Memory)
	case res.Memory.Reservation == nil || *res.Memory.Reservation != 32<<20:
		t.Errorf("state.json reservation: %+v", res.Memory)
	case res.Pids == nil || *res.Pids.Limit != 20:
		t.Errorf("state.json pids: %+v", res.Pids)
	case res.CPU == nil || *res.CPU.Shares != 256 || *res.CPU.Quota != 20000 || res.CPU.Cpus != "0":
		t.Errorf("state.json cpu: %+v", res.CPU)
	case len(res.Devices) != 1 || res.Devices[0].Allow:
		t.Errorf("state.json devices changed: %+v", res.Devices)
	}

	// Device rules given replace the old ones (default deny, the default /dev nodes kept).
	cmd = exec.Command(berthBin, "--root", e.root, "update", "-r", "-", "upd-1")
	cmd.Stdin = strings.NewReader(`{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}`)
	if r := e.berthCmd(cmd); r.code != 0 {
		t.Fatalf("update devices: exit %d: %s", r.code, r.stderr)
	}
	list := v1File(t, "devices", "upd-1", "devices.list")
	for _, want := range []string{"c 1:11 r", "c 1:3 rwm", "c 136:* rwm"} {
		if !strings.Contains(list, want) {
			t.Errorf("devices.list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "a *:* rwm") {
		t.Errorf("devices.list allows everything:\n%s", list)
	}
	if res := storedResources(t, e, "upd-1"); len(res.Devices) != 1 || res.Devices[0].Minor == nil || *res.Devices[0].Minor != 11 {
		t.Errorf("state.json devices: %+v", res.Devices)
	}

	// Kernel memory is obsolete: a warning, as runc.
	r := e.mustBerth("update", "--kernel-memory", "10m", "upd-1")
	if !strings.Contains(r.stderr, "kernel-memory") {
		t.Errorf("--kernel-memory: no warning: %q", r.stderr)
	}
	// Clear errors for what cannot be done.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"update", "--memory", "12q", "upd-1"}, "--memory"},
		{[]string{"update", "upd-1"}, "nothing to change"},
		{[]string{"update", "--memory", "1m", "nosuch"}, "does not exist"},
		{[]string{"update", "--resources", "-", "upd-1"}, "--resources"},
		{[]string{"update", "--blkio-weight", "5", "upd-1"}, "--blkio-weight"},
	} {
		r := e.berth(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("berth %s: exit %d, stderr %q, want an error about %s", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/blkio/berth-test-upd/upd-1/blkio.weight"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/blkio/berth-test-upd/upd-1/blkio.bfq.weight"); err != nil {
			r := e.berth("update", "--blkio-weight", "500", "upd-1")
			if r.code == 0 || !strings.Contains(r.stderr, "blockIO.weight") {
				t.Errorf("--blkio-weight without a weight file: exit %d, %q", r.code, r.stderr)
			}
		}
	}

	// A stopped container cannot be updated: runc's words, which callers match.
	e.mustBerth("kill", "upd-1", "KILL")
	e.waitStatus("upd-1", "stopped")
	if r := e.berth("update", "--memory", "64m", "upd-1"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("update of a stopped container: exit %d, %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "upd-1")
}

// A created (not yet started) container can be updated too, and v1 refuses unified keys.
func TestUpdateCreatedV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	defer cleanupUpdGroups()
	e := newEnv(t, "true")
	e.spec.Linux.CgroupsPath = "/berth-test-upd/upd-2"
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "upd-2")
	e.mustBerth("update", "--pids-limit", "12", "upd-2")
	if got := v1File(t, "pids", "upd-2", "pids.max"); got != "12" {
		t.Errorf("pids.max = %s", got)
	}
	cmd := exec.Command(berthBin, "--root", e.root, "update", "-r", "-", "upd-2")
	cmd.Stdin = strings.NewReader(`{"unified": {"memory.high": "1000000"}}`)
	if r := e.berthCmd(cmd); r.code == 0 || !strings.Contains(r.stderr, "unified") {
		t.Errorf("unified on v1: exit %d, %q", r.code, r.stderr)
	}
	if res := storedResources(t, e, "upd-2"); res.Unified != nil {
		t.Errorf("a refused update was recorded: %+v", res.Unified)
	}
	e.mustBerth("delete", "--force", "upd-2")
}

// delete --force kills processes in groups nested in the container's (a container may make its
// own) and removes those groups.
func TestDeleteNestedCgroupsV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	defer cleanupUpdGroups()
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test-upd/upd-nest"
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "upd-nest")
	stray := exec.Command("sleep", "100")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	for _, h := range []string{"pids", "memory"} {
		sub := filepath.Join("/sys/fs/cgroup", h, "berth-test-upd/upd-nest/sub/deeper")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte(strconv.Itoa(stray.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	e.mustBerth("delete", "--force", "upd-nest")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		stray.Process.Kill()
		t.Error("a process in a nested group survived delete --force")
	}
	for _, h := range []string{"pids", "memory"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "berth-test-upd/upd-nest")); err == nil {
			t.Errorf("%s group left after delete --force", h)
		}
	}
}
