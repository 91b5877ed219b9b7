package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An exec'd process never shows in the container's pid namespace while its mount namespace is
// still the host's: a container process with CAP_SYS_PTRACE (no user namespace: the host's
// capability) could otherwise open its /proc/PID/root, cwd or fds, the host's. A watcher in
// the container (testdata/mntwatch.c) scans /proc and records any process whose mount
// namespace is not its own while the test runs many execs. The window it looks for is short,
// so a pass after many execs is evidence, not proof.
func TestExecNeverInPidNSWithHostMounts(t *testing.T) {
	needTools(t, "gcc")
	w := t.TempDir()
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(w, "mntwatch"), "testdata/mntwatch.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	bundle := runcSpecBundle(t, "/w/mntwatch")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		caps := cfg["process"].(map[string]any)["capabilities"].(map[string]any)
		for _, set := range []string{"bounding", "effective", "permitted"} {
			caps[set] = append(caps[set].([]any), "CAP_SYS_PTRACE")
		}
		cfg["mounts"] = append(cfg["mounts"].([]any), map[string]any{
			"destination": "/w", "type": "bind", "source": w, "options": []any{"rbind", "rw"},
		})
		for _, ns := range cfg["linux"].(map[string]any)["namespaces"].([]any) {
			if ns.(map[string]any)["type"] == "user" {
				t.Fatal("runc spec's config has a user namespace")
			}
		}
	})
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	e.mustBerth("run", "-d", "--bundle", bundle, "pw")
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(w, "ready")); err == nil {
			break
		}
		if i == 600 {
			t.Fatal("the watcher never started")
		}
		time.Sleep(100 * time.Millisecond)
	}
	const n = 200
	for i := 0; i < n; i++ {
		if r := e.berth("exec", "pw", "true"); r.code != 0 {
			t.Fatalf("exec %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	// The watcher still runs (it would have stopped on an error).
	if st := e.state("pw"); st.Status != "running" {
		t.Fatalf("the watcher's container is %s", st.Status)
	}
	if bad, err := os.ReadFile(filepath.Join(w, "bad")); err == nil {
		lines := strings.Split(strings.TrimSpace(string(bad)), "\n")
		t.Errorf("%d sightings over %d execs of a process in the container's pid namespace with another mount namespace, first: %s", len(lines), n, lines[0])
	}
	e.mustBerth("delete", "--force", "pw")
}
