package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
)

// On this kind of host (hybrid: limits live in v1 hierarchies) the container's limits must be
// in the host's v1 files and visible to the container through its /sys/fs/cgroup.
func TestCgroupV1LimitsOnHost(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	e := newEnv(t, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep -c . /sys/fs/cgroup/pids/cgroup.procs; sleep 100")
	mem, pids, shares := int64(96<<20), int64(42), uint64(512)
	e.spec.Linux.CgroupsPath = "/berth-test/c1"
	e.spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem}, Pids: &specs.LinuxPids{Limit: &pids},
		CPU: &specs.LinuxCPU{Shares: &shares},
	}
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "c1")
	pid := e.state("c1").Pid
	for file, want := range map[string]string{
		"memory/berth-test/c1/memory.limit_in_bytes": "100663296",
		"pids/berth-test/c1/pids.max":                "42",
		"cpu/berth-test/c1/cpu.shares":               "512",
	} {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", file))
		if err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s = %q (%v), want %s", file, data, err, want)
		}
	}
	// The init joined every hierarchy before it could fork.
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	for _, h := range []string{"memory", "pids", "cpu", "freezer", "devices"} {
		if !strings.Contains(string(data), h+":/berth-test/c1") {
			t.Errorf("init not in the %s group:\n%s", h, data)
		}
	}
	e.mustBerth("delete", "--force", "c1")
	for _, h := range []string{"memory", "pids", "cpu"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "berth-test/c1")); err == nil {
			t.Errorf("%s group left after delete", h)
		}
	}
	for _, h := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd"} {
		os.Remove(filepath.Join("/sys/fs/cgroup", h, "berth-test"))
	}
}

func TestCgroupVisibleInsideContainer(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	e := newEnv(t, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
	mem, pids := int64(64<<20), int64(17)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}, Pids: &specs.LinuxPids{Limit: &pids}}
	r := e.run("c1")
	if r.code != 0 || r.stdout != "67108864\n17\n" {
		t.Fatalf("exit %d, inside the container: %q %s", r.code, r.stdout, r.stderr)
	}
}

// On a hybrid host the container also has a group in the cgroup2 tree (as with runc), made
// with clone3 CLONE_INTO_CGROUP, and removed by delete.
func TestHybridUnifiedGroup(t *testing.T) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &sfs); err != nil || sfs.Type != 0x63677270 {
		t.Skip("not a hybrid host: no cgroup2 at /sys/fs/cgroup/unified")
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test/hy1"
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "hy1")
	pid := e.state("hy1").Pid
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(data), "\n0::/berth-test/hy1\n") {
		t.Errorf("the init is not in the unified group: %s", data)
	}
	e.mustBerth("delete", "--force", "hy1")
	if _, err := os.Stat("/sys/fs/cgroup/unified/berth-test/hy1"); err == nil {
		t.Errorf("the unified group was left behind")
	}
}

// crun's recipe for hybrid hosts (and `make bench`'s): the cgroup2 tree hidden under a tmpfs
// in a private mount namespace. berth must use only the mount a lookup reaches, so the
// covered cgroup2 tree is never cloned into, and the container runs on v1 alone.
func TestCoveredUnifiedMount(t *testing.T) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &sfs); err != nil || sfs.Type != 0x63677270 {
		t.Skip("not a hybrid host: no cgroup2 at /sys/fs/cgroup/unified")
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test/cov1"
	e.writeSpec()
	covered := func(args string) result {
		script := fmt.Sprintf("mount --make-rprivate / && mount -t tmpfs none /sys/fs/cgroup/unified && exec %s --root %s %s",
			berthBin, e.root, args)
		return e.berthCmd(exec.Command("unshare", "-m", "sh", "-c", script))
	}
	if r := covered("run -d --bundle " + e.bundle + " cov1"); r.code != 0 {
		t.Fatalf("run under a covered cgroup2 mount: exit %d: %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", e.state("cov1").Pid))
	if !strings.Contains(string(data), ":memory:/berth-test/cov1\n") {
		t.Errorf("not in its memory group:\n%s", data)
	}
	if strings.Contains(string(data), "0::/berth-test/cov1\n") {
		t.Errorf("joined the covered cgroup2 tree:\n%s", data)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/berth-test/cov1"); err == nil {
		t.Errorf("made a group in the covered cgroup2 tree")
	}
	if r := covered("delete --force cov1"); r.code != 0 {
		t.Errorf("delete under a covered cgroup2 mount: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test/cov1"); err == nil {
		t.Errorf("memory group left after delete")
	}
}

// containerd's CRI hands a systemd-style slice:prefix:name even with its cgroupfs driver;
// without --systemd-cgroup, runc makes that literal directory, and so must berth.
func TestSliceStyleCgroupsPath(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test.slice:cri-containerd:sl1"
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "sl1")
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", e.state("sl1").Pid))
	if !strings.Contains(string(data), ":memory:/berth-test.slice:cri-containerd:sl1\n") {
		t.Errorf("not in the literal group:\n%s", data)
	}
	e.mustBerth("delete", "--force", "sl1")
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test.slice:cri-containerd:sl1"); err == nil {
		t.Errorf("group left after delete")
	}
}

// A group that exists already: frozen, create is refused (it hung: the init froze on
// joining) and the group is left as it was; holding processes, create warns, as runc does.
func TestPreexistingGroup(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	frz := "/sys/fs/cgroup/freezer/berth-test/pre1"
	if err := os.MkdirAll(frz, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(frz)
	if err := os.WriteFile(frz+"/freezer.state", []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test/pre1"
	e.writeSpec()
	done := make(chan result, 1)
	go func() { done <- e.berth("create", "--bundle", e.bundle, "pre1") }()
	select {
	case r := <-done:
		if r.code == 0 || !strings.Contains(r.stderr, "container's cgroup unexpectedly frozen") {
			t.Errorf("create in a frozen group: exit %d %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("create in a frozen group hangs")
	}
	if _, err := os.Stat(frz); err != nil {
		t.Errorf("the pre-existing group was removed: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test/pre1"); err == nil {
		t.Errorf("a refused create left a memory group")
	}
	os.WriteFile(frz+"/freezer.state", []byte("THAWED"), 0)
	os.Remove(frz)

	e.spec.Linux.CgroupsPath = "/berth-test/pre2"
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "pre2a")
	if r := e.mustBerth("run", "-d", "--bundle", e.bundle, "pre2b"); !strings.Contains(r.stderr, "container's cgroup is not empty") {
		t.Errorf("no warning for a non-empty group: %q", r.stderr)
	}
	e.mustBerth("kill", "pre2b", "KILL")
	e.mustBerth("delete", "--force", "pre2a")
}

// linux.resources.unified on a v1 host: refused with runc's "invalid configuration", and the
// groups the create had made are gone.
func TestUnifiedOnV1Refused(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	e := newEnv(t, "true")
	e.spec.Linux.CgroupsPath = "/berth-test/uni1"
	e.spec.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}
	r := e.run("uni1")
	if r.code == 0 || !strings.Contains(r.stderr, "invalid configuration") || !strings.Contains(r.stderr, "linux.resources.unified") {
		t.Errorf("exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/berth-test/uni1"); err == nil {
		t.Errorf("memory group left behind")
	}
}
