package cgroups

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseSystemdPath(t *testing.T) {
	good := []struct{ in, unit, cgroup string }{
		{"", "berth-ID.scope", "/system.slice/berth-ID.scope"},
		{":cri-containerd:abc", "cri-containerd-abc.scope", "/system.slice/cri-containerd-abc.scope"},
		{"kubepods-besteffort-pod1.slice:cri-containerd:abc", "cri-containerd-abc.scope",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		{"-.slice:p:n", "p-n.scope", "/p-n.scope"},
	}
	for _, g := range good {
		p, err := parseSystemdPath(g.in, "ID")
		if err != nil {
			t.Errorf("%q: %v", g.in, err)
			continue
		}
		if p.unit() != g.unit || p.cgroup() != g.cgroup {
			t.Errorf("%q: unit %q cgroup %q, want %q %q", g.in, p.unit(), p.cgroup(), g.unit, g.cgroup)
		}
		if q, err := parseSystemdPath(p.String(), "other"); err != nil || q != p {
			t.Errorf("%q: does not read back from %q: %v %v", g.in, p.String(), q, err)
		}
	}
	for _, bad := range []string{"/berth/abc", "a:b", "a:b:c:d", "system:p:n", "a--b.slice:p:n", "-a.slice:p:n",
		"a/b.slice:p:n", "system.slice:p:", "system.slice:p:n.slice", "system.slice:p/q:n"} {
		if _, err := parseSystemdPath(bad, "ID"); err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error does not quote the path: %v", bad, err)
		}
	}
}

func TestSystemdProps(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	w := uint16(500)
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20), Reservation: i64(-1)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(12345), Period: u64(100000), Cpus: "0-2,9", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(-1)},
		BlockIO: &specs.LinuxBlockIO{Weight: &w},
	}
	props, err := systemdProps(r, 252)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range props {
		got[p.Name] = p.Value.Value()
	}
	want := map[string]any{
		"MemoryMax": uint64(64 << 20), "MemorySwapMax": uint64(32 << 20), "MemoryLow": uint64(usecInfinity),
		"CPUWeight": uint64(100), "CPUQuotaPeriodUSec": uint64(100000), "CPUQuotaPerSecUSec": uint64(130000),
		"TasksMax": uint64(usecInfinity), "IOWeight": BlkioToIOWeight(500),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if b, _ := got["AllowedCPUs"].([]byte); !bytes.Equal(b, []byte{0x07, 0x02}) {
		t.Errorf("AllowedCPUs = %v", got["AllowedCPUs"])
	}
	// systemd before 244 has no AllowedCPUs: the files alone carry cpuset.
	props, _ = systemdProps(r, 243)
	for _, p := range props {
		if p.Name == "AllowedCPUs" || p.Name == "AllowedMemoryNodes" {
			t.Errorf("%s given to systemd 243", p.Name)
		}
	}
	if _, err := systemdProps(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "2-1"}}, 252); err == nil || !strings.Contains(err.Error(), "linux.resources.cpu.cpus") {
		t.Errorf("bad cpu list: %v", err)
	}
}

func TestAnnotationProps(t *testing.T) {
	props, err := annotationProps(map[string]string{
		"org.systemd.property.TimeoutStopSec":  "uint32 5",
		"org.systemd.property.CollectMode":     "'inactive-or-failed'",
		"org.systemd.property.TimeoutStopUSec": "uint64 7000000",
		"io.kubernetes.cri.container-type":     "container",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range props {
		got[p.Name] = p.Value.Value()
	}
	if len(got) != 2 || got["CollectMode"] != "inactive-or-failed" {
		t.Errorf("props %v", got)
	}
	// Sorted by annotation: ...TimeoutStopSec (5 s) comes before ...TimeoutStopUSec.
	if props[len(props)-1].Name != "TimeoutStopUSec" || props[len(props)-1].Value.Value() != uint64(7000000) {
		t.Errorf("props %v", props)
	}
	var sec bool
	for _, p := range props {
		sec = sec || p.Name == "TimeoutStopUSec" && p.Value.Value() == uint64(5000000)
	}
	if !sec {
		t.Errorf("TimeoutStopSec=5 not converted to TimeoutStopUSec=5000000: %v", props)
	}
	for _, bad := range []map[string]string{
		{"org.systemd.property.Ti": "true"},
		{"org.systemd.property.Time-out": "true"},
		{"org.systemd.property.CollectMode": "not a variant"},
		{"org.systemd.property.TimeoutStopSec": "'five'"},
	} {
		if _, err := annotationProps(bad); err == nil || !strings.Contains(err.Error(), "annotations[") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestUnifiedProps(t *testing.T) {
	props, err := unifiedProps(map[string]string{"cpu.weight": "42", "cpu.max": "max 50000", "memory.high": "max",
		"memory.max": "1048576", "pids.max": "9", "cpuset.cpus": "1", "io.max": "8:0 rbps=1", "memory.oom.group": "1"}, 252)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range props {
		got[p.Name] = p.Value.Value()
	}
	want := map[string]any{"CPUWeight": uint64(42), "CPUQuotaPeriodUSec": uint64(50000), "CPUQuotaPerSecUSec": uint64(usecInfinity),
		"MemoryHigh": uint64(usecInfinity), "MemoryMax": uint64(1048576), "TasksMax": uint64(9)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want)+1 { // + AllowedCPUs; io.max and memory.oom.group are files only
		t.Errorf("props %v", got)
	}
	for _, bad := range []map[string]string{{"cpu.max": "x 1"}, {"memory.max": "1G"}, {"cpu.weight": "-1"}} {
		if _, err := unifiedProps(bad, 252); err == nil || !strings.Contains(err.Error(), "linux.resources.unified[") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestDeviceProps(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "c", Major: i64(136), Access: "rw"},
	}
	props, ok := deviceProps(rules)
	if !ok || len(props) != 3 || props[0].Value.Value() != "strict" || len(props[1].Value.Value().([]deviceAllow)) != 0 {
		t.Fatalf("props %v %v", props, ok)
	}
	got := props[2].Value.Value().([]deviceAllow)
	want := []deviceAllow{{"/dev/char/1:3", "rwm"}, {"char-*", "m"}, {"char-pts", "rw"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DeviceAllow %v, want %v", got, want)
	}
	// Allow all at the end: no restriction.
	props, ok = deviceProps(append(rules, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}))
	if !ok || props[0].Value.Value() != "auto" {
		t.Errorf("allow-all: %v %v", props, ok)
	}
	// Shapes systemd cannot say: nothing for systemd (berth's program alone).
	for _, bad := range [][]specs.LinuxDeviceCgroup{
		{{Allow: true, Access: "rwm"}, {Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}},
		{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Minor: i64(3), Access: "rwm"}},
		{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3)}, {Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"}},
	} {
		if props, ok := deviceProps(bad); ok {
			t.Errorf("%v: %v", bad, props)
		}
	}
}
