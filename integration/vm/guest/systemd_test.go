package guest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
)

// These run in the VM that boots systemd as PID 1 (TestSystemdInVM): berth --systemd-cgroup
// asks that systemd for each container's scope.

func needSystemd(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_VM_SYSTEMD") == "" {
		t.Skip("needs the VM booted with systemd (TestSystemdInVM)")
	}
}

// unitProps reads properties of a unit as systemd reports them (systemctl show).
func unitProps(t *testing.T, unit string, names ...string) map[string]string {
	t.Helper()
	out, err := exec.Command("systemctl", "show", "-p", strings.Join(names, ","), unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl show %s: %v\n%s", unit, err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func expectProps(t *testing.T, unit string, want map[string]string) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	got := unitProps(t, unit, names...)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q", unit, k, got[k], v)
		}
	}
}

// A container with limits gets its scope in the slice its cgroupsPath names (a nested slice
// expands to its parents), every limit is in the unit's properties and in the scope's files,
// only the container's processes are in it, update changes both, and delete removes it.
func TestSystemdScope(t *testing.T) {
	needSystemd(t)
	e := newEnv(t, "sleep", "1000")
	const unit = "berthvm-sd1.scope"
	const path = "/berth.slice/berth-vm.slice/" + unit
	e.spec.Linux.CgroupsPath = "berth-vm.slice:berthvm:sd1"
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(8 << 20)}
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"}
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)}
	e.spec.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: u16(300)}
	e.spec.Linux.Resources.Unified = map[string]string{"memory.high": "50331648"}
	e.spec.Linux.Resources.Devices = append(e.spec.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(4), Access: "rw"})
	// Unit properties from annotations, as podman sets TimeoutStopUSec.
	e.spec.Annotations = map[string]string{"org.systemd.property.TimeoutStopSec": "uint32 12",
		"org.systemd.property.CollectMode": "'inactive-or-failed'"}
	e.writeSpec()
	r := e.mustBerth("--systemd-cgroup", "--explain", "create", "--bundle", e.bundle, "sd1")
	for _, want := range []string{"cgroups.systemd.Create", "StartTransientUnit " + unit, "cgroups.systemd.LeaveGroup", "SetUnitProperties " + unit} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("--explain does not show %q:\n%s", want, r.stderr)
		}
	}
	e.mustBerth("start", "sd1")
	weight := strconv.FormatUint(cgroups.SharesToWeight(512), 10)
	ioWeight := strconv.FormatUint(cgroups.BlkioToIOWeight(300), 10)
	expectProps(t, unit, map[string]string{
		"ActiveState": "active", "Slice": "berth-vm.slice", "ControlGroup": path, "Delegate": "yes",
		"MemoryMax": "67108864", "MemoryLow": "8388608", "CPUWeight": weight, "CPUQuotaPerSecUSec": "500ms",
		"TasksMax": "50", "AllowedCPUs": "0", "AllowedMemoryNodes": "0", "IOWeight": ioWeight,
		"TimeoutStopUSec": "12s", "CollectMode": "inactive-or-failed", "MemoryHigh": "50331648",
	})
	for file, want := range map[string]string{
		"memory.max": "67108864", "memory.low": "8388608", "cpu.weight": weight, "cpu.max": "50000 100000",
		"pids.max": "50", "cpuset.cpus": "0", "cpuset.mems": "0", "io.weight": "default " + ioWeight,
		"memory.high": "50331648",
	} {
		expectFile(t, path, file, want)
	}
	// The device rules (the defaults: deny all, then allow /dev/null and friends, any mknod,
	// the pty slaves) are the unit's device policy too; the container still has its nodes.
	expectProps(t, unit, map[string]string{"DevicePolicy": "strict"})
	if out, _ := exec.Command("systemctl", "show", "-p", "DeviceAllow", unit).CombinedOutput(); !strings.Contains(string(out), "/dev/char/1:3 rwm") || !strings.Contains(string(out), "char-pts rw") || !strings.Contains(string(out), "/dev/char/1:4 rw") {
		t.Errorf("DeviceAllow of %s: %s", unit, out)
	}
	if r := e.berth("exec", "sd1", "sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c"); r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Errorf("devices in the container: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Only the container is in the scope: berth went back to its own group after the clone.
	var s struct{ Pid int }
	st := e.mustBerth("state", "sd1")
	if err := json.Unmarshal([]byte(st.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if procs := cg(t, path, "cgroup.procs"); procs != strconv.Itoa(s.Pid) {
		t.Errorf("%s/cgroup.procs = %q, want only the init %d", path, procs, s.Pid)
	}
	// The container sees the scope as its cgroup namespace's root; exec'd processes join it.
	if r := e.berth("--explain", "exec", "sd1", "cat", "/proc/self/cgroup"); r.stdout != "0::/\n" {
		t.Errorf("exec: /proc/self/cgroup = %q, want 0::/\n%s", r.stdout, r.stderr)
	}

	// An update that carries the device rules again replaces the unit's list (no duplicates).
	allowBefore, _ := exec.Command("systemctl", "show", "-p", "DeviceAllow", unit).CombinedOutput()
	// pause, ps and events work on the scope's group, without the flag.
	e.mustBerth("pause", "sd1")
	expectFile(t, path, "cgroup.freeze", "1")
	if st := e.mustBerth("state", "sd1").stdout; !strings.Contains(st, `"status": "paused"`) && !strings.Contains(st, `"status":"paused"`) {
		t.Errorf("state after pause: %s", st)
	}
	e.mustBerth("resume", "sd1")
	expectFile(t, path, "cgroup.freeze", "0")
	if ps := e.mustBerth("ps", "--format", "json", "sd1").stdout; strings.TrimSpace(ps) != "["+strconv.Itoa(s.Pid)+"]" {
		t.Errorf("ps --format json = %q, want [%d]", ps, s.Pid)
	}
	if ev := e.mustBerth("events", "--stats", "sd1").stdout; !strings.Contains(ev, `"limit":67108864`) {
		t.Errorf("events --stats does not show the memory limit: %s", ev)
	}

	// update goes to the unit and the files, without the flag (the state knows the driver).
	e.mustBerth("update", "--memory", "128m", "--pids-limit", "80", "--cpu-quota", "25000", "sd1")
	expectProps(t, unit, map[string]string{"MemoryMax": "134217728", "TasksMax": "80", "CPUQuotaPerSecUSec": "250ms"})
	expectFile(t, path, "memory.max", "134217728")
	expectFile(t, path, "pids.max", "80")
	expectFile(t, path, "cpu.max", "25000 100000")
	if after, _ := exec.Command("systemctl", "show", "-p", "DeviceAllow", unit).CombinedOutput(); string(after) != string(allowBefore) {
		t.Errorf("DeviceAllow changed by update:\nbefore %s\nafter  %s", allowBefore, after)
	}

	// New device rules replace the unit's list: the new device is in it, the one only the
	// config had (1:4) is gone, nothing is there twice.
	res := filepath.Join(t.TempDir(), "res.json")
	os.WriteFile(res, []byte(`{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}]}`), 0o644)
	e.mustBerth("update", "--resources", res, "sd1")
	out, _ := exec.Command("systemctl", "show", "-p", "DeviceAllow", unit).CombinedOutput()
	if !strings.Contains(string(out), "/dev/char/1:11 rw\n") || strings.Contains(string(out), "/dev/char/1:4 ") || strings.Count(string(out), "/dev/char/1:3 rwm") != 1 {
		t.Errorf("DeviceAllow after update --resources: %s", out)
	}

	e.mustBerth("--systemd-cgroup", "delete", "--force", "sd1")
	expectProps(t, unit, map[string]string{"LoadState": "not-found", "ActiveState": "inactive"})
	if _, err := os.Stat(cgroupRoot + path); !os.IsNotExist(err) {
		t.Errorf("%s still there after delete (%v)", path, err)
	}
}

// A foreground run with no cgroupsPath gets system.slice/berth-<id>.scope, gone when run ends.
func TestSystemdRunDefaultPath(t *testing.T) {
	needSystemd(t)
	e := newEnv(t, "sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max")
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20)}
	e.writeSpec()
	r := e.berth("--systemd-cgroup", "run", "--bundle", e.bundle, "sd2")
	if r.code != 0 || r.stdout != "0::/\n33554432\n" {
		t.Fatalf("run: exit %d\nstdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	expectProps(t, "berth-sd2.scope", map[string]string{"LoadState": "not-found"})
	if _, err := os.Stat(cgroupRoot + "/system.slice/berth-sd2.scope"); !os.IsNotExist(err) {
		t.Errorf("scope directory left after run (%v)", err)
	}
}

// A cgroupsPath that is not "slice:prefix:name" is refused with an error naming the field, and
// nothing is left behind.
func TestSystemdBadPath(t *testing.T) {
	needSystemd(t)
	for _, bad := range []string{"/berth/sd3", "system:berth:sd3", "a--b.slice:berth:sd3"} {
		e := newEnv(t, "true")
		e.spec.Linux.CgroupsPath = bad
		e.writeSpec()
		r := e.berth("--systemd-cgroup", "create", "--bundle", e.bundle, "sd3")
		if r.code == 0 {
			t.Errorf("%q: create succeeded", bad)
			continue
		}
		if !strings.Contains(r.stderr, "linux.cgroupsPath") || !strings.Contains(r.stderr, bad) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%q: error is not one line naming linux.cgroupsPath and the path: %q", bad, r.stderr)
		}
		if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
			t.Errorf("%q: %d entries left in the state root", bad, len(ents))
		}
	}
	e := newEnv(t, "true")
	e.spec.Annotations = map[string]string{"org.systemd.property.CollectMode": "inactive"}
	e.writeSpec()
	r := e.berth("--systemd-cgroup", "create", "--bundle", e.bundle, "sd3")
	if r.code == 0 || !strings.Contains(r.stderr, `annotations["org.systemd.property.CollectMode"]`) {
		t.Errorf("a property value that is not a D-Bus value: exit %d, %q", r.code, r.stderr)
	}
}

// On a host whose cgroup2 is mounted nsdelegate (systemd mounts it so), exec into a container
// with a cgroup namespace works with the cgroupfs driver too: the exec'd process is cloned
// into the container's group and enters the cgroup namespace only then.
func TestSystemdHostCgroupfsExec(t *testing.T) {
	needSystemd(t)
	e := newEnv(t, "sleep", "1000")
	e.spec.Linux.CgroupsPath = "/berth-vm/sd4"
	e.startDetached("sd4")
	if r := e.berth("exec", "sd4", "cat", "/proc/self/cgroup"); r.code != 0 || r.stdout != "0::/\n" {
		t.Errorf("exec: exit %d, /proc/self/cgroup = %q, want 0::/\n%s", r.code, r.stdout, r.stderr)
	}
	e.mustBerth("delete", "--force", "sd4")
}

// A create that fails after the scope exists leaves neither unit nor directory nor state, and
// berth reports the error (it is not killed with the scope): before the init exists (a bind
// mount source that cannot be opened, while berth itself still holds the scope) and after (a
// program that does not exist).
func TestSystemdFailedCreate(t *testing.T) {
	needSystemd(t)
	for _, c := range []struct {
		name, want string
		edit       func(*specs.Spec)
	}{
		{"sd5", "/nonexistent-source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Source: "/nonexistent-source", Type: "bind", Options: []string{"bind"}})
		}},
		{"sd6", "no-such-program", func(s *specs.Spec) { s.Process.Args = []string{"no-such-program"} }},
	} {
		e := newEnv(t, "true")
		e.spec.Linux.CgroupsPath = "system.slice:berthvm:" + c.name
		c.edit(e.spec)
		e.writeSpec()
		r := e.berth("--systemd-cgroup", "create", "--bundle", e.bundle, c.name)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: create: exit %d, stderr %q, want an error naming %s", c.name, r.code, r.stderr, c.want)
		}
		unit := "berthvm-" + c.name + ".scope"
		expectProps(t, unit, map[string]string{"LoadState": "not-found"})
		if _, err := os.Stat(cgroupRoot + "/system.slice/" + unit); !os.IsNotExist(err) {
			t.Errorf("%s: scope directory left (%v)", c.name, err)
		}
		if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
			t.Errorf("%s: %d entries left in the state root", c.name, len(ents))
		}
	}
}
