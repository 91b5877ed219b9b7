package integration

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The systemd driver as far as a host without systemd shows it (the VM suite runs it with
// systemd): features says it is there, a cgroupsPath not in systemd's form is refused naming
// the field before anything is made, and a good one fails in one line saying systemd is not
// running.
func TestSystemdDriverWithoutSystemd(t *testing.T) {
	e := newEnv(t, "true")
	var f struct {
		Linux struct {
			Cgroup struct{ Systemd, SystemdUser *bool }
		}
	}
	if r := e.berth("features"); json.Unmarshal([]byte(r.stdout), &f) != nil || f.Linux.Cgroup.Systemd == nil || !*f.Linux.Cgroup.Systemd {
		t.Errorf("features: linux.cgroup.systemd is not true:\n%s", r.stdout)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: the VM suite's TestSystemdInVM covers the rest")
	}
	for _, c := range []struct{ path, want string }{
		{"/kubepods/pod1/c1", `linux.cgroupsPath: "/kubepods/pod1/c1": the systemd cgroup driver expects "slice:prefix:name"`},
		{"kube--pods.slice:cri-containerd:c1", `linux.cgroupsPath: "kube--pods.slice:cri-containerd:c1": slice`},
		{"kubepods-besteffort.slice:cri-containerd:c1", "systemd is not running on this host"},
	} {
		e.spec.Linux.CgroupsPath = c.path
		e.writeSpec()
		r := e.berth("--systemd-cgroup", "create", "--bundle", e.bundle, "sdc")
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", c.path, r.code, r.stderr, c.want)
		}
		if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
			t.Errorf("%s: %d entries left in the state root", c.path, len(ents))
		}
	}
}
