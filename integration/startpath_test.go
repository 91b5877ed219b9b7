package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The processes one `berth run` of a `runc spec` bundle starts, counted with strace (counts,
// never times: see docs/performance.md): berth clones the init and nothing else (Go's
// os.StartProcess used to fork a throw-away child first, to probe clone(CLONE_PIDFD)), and
// three programs are executed: berth, the init (berth again) and the user's program.
func TestRunProcessCount(t *testing.T) {
	needTools(t, "runc", "strace")
	bundle := runcSpecBundle(t, "true")
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command("strace", "-f", "-qq", "-o", trace, "-e", "trace=clone,clone3,fork,vfork,execve,execveat",
		berthBin, "--root", e.root, "run", "--bundle", bundle, "c1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("berth run under strace: %v %s", err, out)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var forks, execs []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "resumed>") || strings.Contains(l, "= -1") {
			continue
		}
		switch {
		case strings.Contains(l, "execve(") || strings.Contains(l, "execveat("):
			execs = append(execs, l)
		case strings.Contains(l, "clone") && !strings.Contains(l, "CLONE_THREAD"):
			forks = append(forks, l)
		}
	}
	if len(forks) != 1 {
		t.Errorf("berth run started %d processes, want 1 (the init):\n%s", len(forks), strings.Join(forks, "\n"))
	}
	if len(execs) != 3 {
		t.Errorf("%d programs executed, want 3 (berth, berth init, true):\n%s", len(execs), strings.Join(execs, "\n"))
	}
}
