package guest

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

// Every linux.resources limit lands in its v2 file, with runc's conversions.
func TestLimitsReadBack(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	path := "/cg2/cg2-limits"
	e.spec.Linux.CgroupsPath = path
	e.spec.Linux.Resources = &specs.LinuxResources{
		Devices: e.spec.Linux.Resources.Devices,
		Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Reservation: i64(64 << 20), Swap: i64(320 << 20)},
		CPU: &specs.LinuxCPU{Shares: u64(2048), Quota: i64(50000), Period: u64(100000), Burst: u64(20000),
			Cpus: "1", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: i64(100)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500),
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 1, Minor: 0}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 1, Minor: 0}, Rate: 300}},
		},
		Unified: map[string]string{"memory.high": "209715200", "memory.oom.group": "1"},
	}
	huge := hasHugePages("2048kB")
	if huge {
		e.spec.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	pid := e.startDetached("cg2-limits")
	want := map[string]string{
		"memory.max":       "268435456",
		"memory.low":       "67108864",
		"memory.swap.max":  "67108864", // memory+swap 320M - memory 256M
		"memory.high":      "209715200",
		"memory.oom.group": "1",
		"cpu.weight":       strconv.FormatUint(cgroups.SharesToWeight(2048), 10),
		"cpu.max":          "50000 100000",
		"cpu.max.burst":    "20000",
		"cpuset.cpus":      "1",
		"cpuset.mems":      "0",
		"pids.max":         "100",
		"io.weight":        "default 4950", // 1 + (500-10)*9999/990
		"io.max":           "1:0 rbps=1048576 wbps=max riops=max wiops=300",
	}
	if huge {
		want["hugetlb.2MB.max"] = "4194304"
	}
	for f, w := range want {
		expectFile(t, path, f, w)
	}
	expectFile(t, path, "cpuset.cpus.effective", "1")
	m, err := cgroups.New(path, "cg2-limits")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := m.Stats(); err != nil || st.Memory.Usage.Limit != 256<<20 || st.Pids.Limit != 100 || st.Memory.Swap.Limit != 64<<20 {
		t.Errorf("stats: %+v %v", st, err)
	}
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if strings.TrimSpace(string(data)) != "0::"+path {
		t.Errorf("init's cgroup: %q, want 0::%s", data, path)
	}
	e.mustBerth("delete", "--force", "cg2-limits")
	if _, err := os.Stat(filepath.Join(cgroupRoot, path)); err == nil {
		t.Errorf("%s left after delete", path)
	}
}

func hasHugePages(size string) bool {
	_, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-" + size)
	return err == nil
}

// cpu.idle and the shares curve's fixed points.
func TestCPUIdleAndWeights(t *testing.T) {
	for shares, w := range map[uint64]uint64{2: 1, 1024: 100, 262144: 10000} {
		if got := cgroups.SharesToWeight(shares); got != w {
			t.Errorf("shares %d -> weight %d, want %d", shares, got, w)
		}
	}
	e := newEnv(t, "true")
	e.spec.Linux.CgroupsPath = "/cg2/cg2-idle"
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Idle: i64(1)}
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "cg2-idle")
	expectFile(t, "/cg2/cg2-idle", "cpu.idle", "1")
}

// A process allocating past memory.max is OOM-killed: run reports 128+SIGKILL and the
// kernel counts the kill.
func TestOOMKill(t *testing.T) {
	e := newEnv(t, "/helper")
	parent := "/cg2-oom"
	e.spec.Linux.CgroupsPath = parent + "/cg2-oom"
	e.spec.Process.Env = append(e.spec.Process.Env, "BERTH_GUEST_ROLE=alloc", "BERTH_GUEST_MB=256")
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	if err := os.MkdirAll(filepath.Join(cgroupRoot, parent), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(cgroupRoot, parent))
	before := keyed(t, parent, "memory.events", "oom_kill")
	r := e.run("cg2-oom")
	if r.code != 137 {
		t.Errorf("run: exit %d, want 137 (OOM-killed)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// memory.events of the parent counts its children's events.
	if after := keyed(t, parent, "memory.events", "oom_kill"); after <= before {
		t.Errorf("memory.events oom_kill: %d before, %d after", before, after)
	}
	// The same program fits under a higher limit.
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(512 << 20)}
	if r := e.run("cg2-oom"); r.code != 0 {
		t.Errorf("under 512M: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Forks past pids.max fail. (The limit leaves room for the threads of berth's Go init, which
// joins the group before its runtime starts and is counted until it execs: see
// TestKnownPidsMaxOne.)
func TestPidsMax(t *testing.T) {
	e := newEnv(t, "sh", "-c", "for i in $(seq 30); do sleep 100 & done; sleep 100")
	path := "/cg2/cg2-pids"
	e.spec.Linux.CgroupsPath = path
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(16)}
	e.startDetached("cg2-pids")
	if !waitFor(10*time.Second, func() bool { return keyed(t, path, "pids.events", "max") > 0 }) {
		t.Fatalf("pids.events max never grew; pids.current %s", cg(t, path, "pids.current"))
	}
	if n, _ := strconv.Atoi(cg(t, path, "pids.current")); n > 16 {
		t.Errorf("pids.current %d is above pids.max 16", n)
	}
}

// cpu.max throttles a spinning container.
func TestCPUMaxThrottles(t *testing.T) {
	e := newEnv(t, "sh", "-c", "while :; do :; done")
	path := "/cg2/cg2-cpu"
	e.spec.Linux.CgroupsPath = path
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: i64(1000), Period: u64(10000)}
	e.startDetached("cg2-cpu")
	expectFile(t, path, "cpu.max", "1000 10000")
	if !waitFor(10*time.Second, func() bool { return keyed(t, path, "cpu.stat", "nr_throttled") > 0 }) {
		t.Fatalf("never throttled:\n%s", cg(t, path, "cpu.stat"))
	}
	m, err := cgroups.New(path, "cg2-cpu")
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.Throttling.ThrottledPeriods == 0 || st.CPU.Usage.Total == 0 || st.Pids.Current == 0 || st.Memory.Usage.Usage == 0 {
		t.Errorf("stats: %+v", st)
	}
}

// The device program denies what the rules do not allow, per access bit.
func TestDevices(t *testing.T) {
	if _, err := os.Stat("/dev/ram0"); err != nil {
		t.Fatal("no /dev/ram0 (brd) in the VM")
	}
	script := `head -c 1 /ram0 >/dev/null 2>&1 && echo read-ok || echo read-denied
echo x 2>/dev/null >/ram0 && echo write-ok || echo write-denied
echo x >/dev/null && echo null-ok`
	cases := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  string
	}{
		{"default", nil, "read-denied\nwrite-denied\nnull-ok\n"},
		{"read", []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "b", Major: i64(1), Minor: i64(0), Access: "r"}},
			"read-ok\nwrite-denied\nnull-ok\n"},
		{"all-then-deny-write", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Type: "b", Major: i64(1), Access: "w"}},
			"read-ok\nwrite-denied\nnull-ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", script)
			e.spec.Linux.CgroupsPath = "/cg2/cg2-dev-" + c.name
			e.spec.Linux.Resources.Devices = c.rules
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/ram0", Source: "/dev/ram0", Type: "bind", Options: []string{"bind"}})
			r := e.run("cg2-dev-" + c.name)
			if r.code != 0 || r.stdout != c.want {
				t.Errorf("exit %d, got:\n%swant:\n%s%s", r.code, r.stdout, c.want, r.stderr)
			}
		})
	}
}

// Freezing stops every process of the container; thawing lets them run again.
func TestFreeze(t *testing.T) {
	e := newEnv(t, "sh", "-c", "while :; do :; done")
	path := "/cg2/cg2-freeze"
	e.spec.Linux.CgroupsPath = path
	e.startDetached("cg2-freeze")
	m, err := cgroups.New(path, "cg2-freeze")
	if err != nil {
		t.Fatal(err)
	}
	usage := func() uint64 { return keyed(t, path, "cpu.stat", "usage_usec") }
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, path, "cgroup.freeze", "1")
	if keyed(t, path, "cgroup.events", "frozen") != 1 {
		t.Errorf("cgroup.events: %s", cg(t, path, "cgroup.events"))
	}
	if s := stateOf(e, "cg2-freeze"); s != "paused" {
		t.Errorf("state while frozen: %s", s)
	}
	u1 := usage()
	time.Sleep(300 * time.Millisecond)
	if u2 := usage(); u2 != u1 {
		t.Errorf("cpu usage grew while frozen: %d -> %d µs", u1, u2)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if keyed(t, path, "cgroup.events", "frozen") != 0 {
		t.Errorf("cgroup.events after thaw: %s", cg(t, path, "cgroup.events"))
	}
	u1 = usage()
	if !waitFor(5*time.Second, func() bool { return usage() > u1 }) {
		t.Error("cpu usage did not grow after thaw")
	}
	if s := stateOf(e, "cg2-freeze"); s != "running" {
		t.Errorf("state after thaw: %s", s)
	}
}

func stateOf(e *env, id string) string {
	var s libcontainer.OCIState
	r := e.mustBerth("state", id)
	_ = json.Unmarshal([]byte(r.stdout), &s)
	return s.Status
}

// berth update changes a running container's limits and its recorded config.
func TestUpdate(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	path := "/cg2/cg2-update"
	e.spec.Linux.CgroupsPath = path
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)}
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(1024)}
	e.startDetached("cg2-update")
	expectFile(t, path, "memory.max", "67108864")
	e.mustBerth("update", "--memory", "128m", "--cpu-quota", "20000", "--cpu-period", "100000", "cg2-update")
	expectFile(t, path, "memory.max", "134217728")
	expectFile(t, path, "cpu.max", "20000 100000")
	expectFile(t, path, "pids.max", "50")

	cmd := exec.Command(berthBin, "--root", e.root, "update", "--resources", "-", "cg2-update")
	cmd.Stdin = strings.NewReader(`{"pids": {"limit": 20}, "memory": {"limit": 100663296}}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update --resources -: %v\n%s", err, out)
	}
	expectFile(t, path, "pids.max", "20")
	expectFile(t, path, "memory.max", "100663296")

	data, err := os.ReadFile(filepath.Join(e.root, "cg2-update", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st libcontainer.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	res := st.Config.Linux.Resources
	if res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 100663296 || res.Pids == nil || *res.Pids.Limit != 20 ||
		res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 20000 {
		t.Errorf("state.json resources not updated: %+v", res)
	}
	// New device rules replace the group's program: a process in the group may read /dev/ram0
	// only after the update.
	tryRead := func() string {
		out, _ := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(cgroupRoot, path, "cgroup.procs")+
			"; head -c 1 /dev/ram0 >/dev/null 2>&1 && echo ok || echo denied").Output()
		return strings.TrimSpace(string(out))
	}
	if got := tryRead(); got != "denied" {
		t.Errorf("/dev/ram0 before the update: %s", got)
	}
	cmd = exec.Command(berthBin, "--root", e.root, "update", "-r", "-", "cg2-update")
	cmd.Stdin = strings.NewReader(`{"devices": [{"allow": true, "type": "b", "major": 1, "minor": 0, "access": "r"}]}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update devices: %v\n%s", err, out)
	}
	if got := tryRead(); got != "ok" {
		t.Errorf("/dev/ram0 after the update: %s", got)
	}

	// An idle group takes no weight: the recorded shares are not written again with it.
	e.mustBerth("update", "--cpu-idle", "1", "cg2-update")
	expectFile(t, path, "cpu.idle", "1")
	e.mustBerth("update", "--cpu-idle", "0", "--cpu-share", "2048", "cg2-update")
	expectFile(t, path, "cpu.idle", "0")
	expectFile(t, path, "cpu.weight", strconv.FormatUint(cgroups.SharesToWeight(2048), 10))

	// Refused on v2, with the field named, and nothing changed.
	r := e.berth("update", "--cpu-rt-runtime", "1000", "cg2-update")
	if r.code == 0 || !strings.Contains(r.stderr, "realtime") {
		t.Errorf("update --cpu-rt-runtime on v2: exit %d, %s", r.code, r.stderr)
	}
}

// What v2 cannot express fails create with the field's name.
func TestV2Refusals(t *testing.T) {
	cases := []struct {
		name  string
		set   func(r *specs.LinuxResources)
		field string
	}{
		{"oom", func(r *specs.LinuxResources) { r.Memory = &specs.LinuxMemory{DisableOOMKiller: boolp(true)} }, "disableOOMKiller"},
		{"swappiness", func(r *specs.LinuxResources) { r.Memory = &specs.LinuxMemory{Swappiness: u64(10)} }, "swappiness"},
		{"rt", func(r *specs.LinuxResources) { r.CPU = &specs.LinuxCPU{RealtimeRuntime: i64(1000)} }, "realtime"},
		{"leaf", func(r *specs.LinuxResources) { r.BlockIO = &specs.LinuxBlockIO{LeafWeight: u16(100)} }, "leafWeight"},
		{"classid", func(r *specs.LinuxResources) { r.Network = &specs.LinuxNetwork{ClassID: new(uint32)} }, "network"},
		{"unified-path", func(r *specs.LinuxResources) { r.Unified = map[string]string{"../memory.max": "1"} }, "unified"},
		{"unified-procs", func(r *specs.LinuxResources) { r.Unified = map[string]string{"cgroup.procs": "1"} }, "unified"},
		{"unified-unknown", func(r *specs.LinuxResources) { r.Unified = map[string]string{"nosuch.file": "1"} }, "unified"},
		{"rdma", func(r *specs.LinuxResources) {
			r.Rdma = map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: new(uint32)}}
		}, "rdma"},
		{"huge", func(r *specs.LinuxResources) {
			r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}
		}, "hugepageLimits[0]"},
		{"swap", func(r *specs.LinuxResources) {
			r.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}
		}, "swap"},
		{"device", func(r *specs.LinuxResources) {
			r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Type: "x"}}
		}, "devices[0].type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			e.spec.Linux.CgroupsPath = "/cg2/cg2-refuse"
			c.set(e.spec.Linux.Resources)
			e.writeSpec()
			r := e.berth("create", "--bundle", e.bundle, "cg2-refuse")
			if r.code == 0 || !strings.Contains(r.stderr, c.field) {
				t.Errorf("create: exit %d, stderr %q, want an error naming %s", r.code, r.stderr, c.field)
			}
			if _, err := os.Stat(filepath.Join(cgroupRoot, "cg2", "cg2-refuse")); err == nil {
				t.Error("cgroup left behind by the failed create")
			}
		})
	}
}

// delete --force kills processes in groups nested in the container's and removes them.
func TestDeleteNestedGroups(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	path := "/cg2/cg2-nest"
	e.spec.Linux.CgroupsPath = path
	e.startDetached("cg2-nest")
	stray := exec.Command("sleep", "100")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stray.Wait() }()
	sub := filepath.Join(cgroupRoot, path, "sub", "deeper")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte(strconv.Itoa(stray.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	e.mustBerth("delete", "--force", "cg2-nest")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		stray.Process.Kill()
		t.Error("a process in a nested group survived delete --force")
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, path)); err == nil {
		t.Error("group left after delete --force")
	}
}
