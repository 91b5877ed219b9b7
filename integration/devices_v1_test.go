package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/cgroups"
)

// kmsgBundle is a `runc spec` bundle with /dev/kmsg (1:11) created, CAP_SYSLOG (to open it for
// reading) and the given device rules, as runc's dev.bats and update.bats write them.
func kmsgBundle(t *testing.T, cgPath string, rules []any, args ...string) string {
	bundle := runcSpecBundle(t, args...)
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		linux := cfg["linux"].(map[string]any)
		linux["cgroupsPath"] = cgPath
		linux["resources"] = map[string]any{"devices": rules}
		linux["devices"] = []any{map[string]any{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}}
		caps := cfg["process"].(map[string]any)["capabilities"].(map[string]any)
		for _, set := range []string{"bounding", "effective", "permitted"} {
			caps[set] = append(caps[set].([]any), "CAP_SYSLOG")
		}
	})
	return bundle
}

func denyAll() map[string]any { return map[string]any{"allow": false, "access": "rwm"} }

// Device access strings as runc's v1 driver reads them: letters other than r, w and m are
// passed over ("rwa" is "rw"); a default-deny container cannot open a device it was not
// given, before and after an unrelated update.
func TestDeviceRulesV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	t.Cleanup(func() { removeTestGroups("berth-test-dev") })

	allowRWA := []any{denyAll(), map[string]any{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}}
	bundle := kmsgBundle(t, "/berth-test-dev/d1", allowRWA, "sh", "-c", `: </dev/kmsg && echo r-ok; : >/dev/kmsg && echo w-ok`)
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	r := e.mustBerth("run", "--bundle", bundle, "d1")
	if !strings.Contains(r.stdout, "r-ok\nw-ok") {
		t.Errorf("allow c 1:11 rwa: %q %q", r.stdout, r.stderr)
	}

	bundle = kmsgBundle(t, "/berth-test-dev/d2", []any{denyAll()}, "sleep", "100")
	e.mustBerth("run", "-d", "--bundle", bundle, "d2")
	check := func(when string) {
		t.Helper()
		for _, cmd := range []string{"head -n 1 /dev/kmsg", "hostname | tee /dev/kmsg"} {
			r := e.berth("exec", "d2", "sh", "-c", cmd)
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Operation not permitted") {
				t.Errorf("%s: %s in a deny-all container: exit %d %q %q", when, cmd, r.code, r.stdout, r.stderr)
			}
		}
	}
	check("after run")
	e.mustBerth("update", "--pids-limit", "42", "d2")
	check("after update --pids-limit")
	list, _ := os.ReadFile("/sys/fs/cgroup/devices/berth-test-dev/d2/devices.list")
	if strings.Contains(string(list), "a *:* rwm") || strings.Contains(string(list), "c 1:11") {
		t.Errorf("devices.list after update:\n%s", list)
	}

	// Device rules given to update (berth applies them; runc passes over them): the group is
	// frozen while they are rewritten, so a process using /dev/null never sees it denied.
	loop := exec.Command(berthBin, "--root", e.root, "exec", "d2", "sh", "-c",
		`while :; do echo x >/dev/null || echo DENIED; done`)
	out := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(out)
	loop.Stdout, loop.Stderr = f, f
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		cmd := exec.Command(berthBin, "--root", e.root, "update", "-r", "-", "d2")
		cmd.Stdin = strings.NewReader(`{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}]}`)
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("update devices: %v %s", err, o)
		}
	}
	if r := e.berth("exec", "d2", "sh", "-c", ": </dev/kmsg"); r.code != 0 {
		t.Errorf("after update allowing 1:11: exit %d %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "--force", "d2")
	loop.Wait()
	f.Close()
	if data, _ := os.ReadFile(out); strings.Contains(string(data), "DENIED") || strings.Contains(string(data), "not permitted") {
		t.Errorf("a process saw /dev/null denied during the update:\n%.300s", data)
	}
}

// A create writes the device rules into the group it just made without freezing it (its only
// process is the init, waiting for "go"), and the rules are in force all the same; a group
// that already existed (a pod's, say) may hold other processes and is still frozen meanwhile.
func TestCreateDeviceRulesNoFreezeV1(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2")
	}
	t.Cleanup(func() { removeTestGroups("berth-test-devnf") })
	bundle := kmsgBundle(t, "/berth-test-devnf/n1", []any{denyAll()}, "sleep", "100")
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	r := e.mustBerth("--explain", "create", "--bundle", bundle, "n1")
	if strings.Contains(r.stderr, "freezer.state = FROZEN") || !strings.Contains(r.stderr, "no freeze") {
		t.Errorf("create of a new group froze it (or did not say why not):\n%s", r.stderr)
	}
	list, _ := os.ReadFile("/sys/fs/cgroup/devices/berth-test-devnf/n1/devices.list")
	if strings.Contains(string(list), "a *:* rwm") || strings.Contains(string(list), "c 1:11") {
		t.Errorf("devices.list after create:\n%s", list)
	}
	e.mustBerth("start", "n1")
	if r := e.berth("exec", "n1", "sh", "-c", "head -n 1 /dev/kmsg"); r.code == 0 {
		t.Errorf("/dev/kmsg readable in a deny-all container: %q", r.stdout)
	}
	e.mustBerth("delete", "--force", "n1")

	// The group exists before the create: frozen while its rules are written.
	if err := os.MkdirAll("/sys/fs/cgroup/devices/berth-test-devnf/n2", 0o755); err != nil {
		t.Fatal(err)
	}
	bundle = kmsgBundle(t, "/berth-test-devnf/n2", []any{denyAll()}, "true")
	r = e.mustBerth("--explain", "run", "--bundle", bundle, "n2")
	if !strings.Contains(r.stderr, "freezer.state = FROZEN") {
		t.Errorf("a pre-existing group was not frozen while its device rules were written:\n%s", r.stderr)
	}
}
