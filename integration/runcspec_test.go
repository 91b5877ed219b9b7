package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runcSpecBundle writes a bundle whose config.json is what `runc spec` wrote (runc 1.1.5, the
// Debian package), changed only where a shell user changes it: no terminal, the shared busybox
// rootfs, and args as the program.
func runcSpecBundle(t *testing.T, args ...string) string {
	t.Helper()
	needTools(t, "runc")
	bundle := t.TempDir()
	cmd := exec.Command("runc", "spec")
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A generic map, so that every field runc wrote is kept as runc wrote it.
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	cfg["root"].(map[string]any)["path"] = rootfs
	if data, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// A bundle from `runc spec` runs under berth as under runc: same exit status, same view from
// inside (environment, capability sets, hostname, user), run by each runtime in turn.
func TestRuncSpecBundleRunsAsUnderRunc(t *testing.T) {
	bundle := runcSpecBundle(t, "sh", "-c",
		`echo "home=$HOME path=$PATH term=$TERM"; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; hostname; id; pwd; exit 7`)
	runIt := func(bin string) (string, int) {
		cmd := exec.Command(bin, "--root", t.TempDir(), "run", "--bundle", bundle, "runcspec")
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if code != 7 {
				t.Logf("%s stderr: %s", bin, ee.Stderr)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return string(out), code
	}
	want, wantCode := runIt("runc")
	if wantCode != 7 {
		t.Fatalf("runc itself exits %d on its own spec, output %q", wantCode, want)
	}
	got, code := runIt(berthBin)
	if code != 7 {
		t.Fatalf("berth run of a runc spec bundle: exit %d, want 7; output %q", code, got)
	}
	if got != want {
		t.Errorf("inside the container berth shows\n%s\nwhere runc shows\n%s", got, want)
	}
}
