package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runc's own checkpoint.bats (v1.1.5), run where criu works: in TestRuncSuiteInVM's guest,
// against berth and runc, each test alone (`bats -f`), as conformance/runc/run.sh runs the
// suite on the host. berth must pass every test runc passes; a test runc fails or skips is
// reported, not judged.

const runcSuite = "/runc-suite/tests/integration"

// batsTests lists the @test names of a .bats file.
func batsTests(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^@test "(.*)" \{$`).FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	return names
}

// runBats runs one test of file against the runtime bin and returns its verdict (ok, skip,
// not ok, timeout) and its TAP output.
func runBats(t *testing.T, bin, file, name string) (string, string) {
	t.Helper()
	// A short directory: the suite's console socket lives under it (108 bytes at most).
	tmp, err := os.MkdirTemp("", "bats")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	re := "^" + regexp.QuoteMeta(name) + "$"
	cmd := exec.CommandContext(ctx, "bats", "--tap", "-f", re, file)
	cmd.Dir = runcSuite
	cmd.Env = append(os.Environ(), "RUNC="+bin, "BATS_TMPDIR="+tmp, "TMPDIR="+tmp,
		"PATH=/runc-suite/bin:"+os.Getenv("PATH"))
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return "timeout", string(out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "ok ") && strings.Contains(l, "# skip"):
			return "skip", string(out)
		case strings.HasPrefix(l, "ok "):
			return "ok", string(out)
		case strings.HasPrefix(l, "not ok "):
			return "not ok", string(out)
		}
	}
	return "no result", string(out)
}

func TestRuncSuiteCheckpoint(t *testing.T) {
	needCriu(t)
	if _, err := exec.LookPath("bats"); err != nil {
		t.Skip("bats and runc's suite are not in this guest (TestRuncSuiteInVM's has them)")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc in this guest")
	}
	// bash's process substitution reads /dev/fd/N, which devtmpfs does not make.
	for link, target := range map[string]string{"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"} {
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := "checkpoint.bats"
	for _, name := range batsTests(t, filepath.Join(runcSuite, file)) {
		name := name
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			rv, rout := runBats(t, runc, file, name)
			bv, bout := runBats(t, berthBin, file, name)
			t.Logf("runc: %s, berth: %s", rv, bv)
			switch {
			case rv != "ok" && rv != "not ok" && rv != "skip":
				t.Errorf("runc: %s (the suite does not run here):\n%s", rv, lastLines(rout, 30))
			case rv == "ok" && bv != "ok":
				t.Errorf("berth: %s where runc passes:\n%s", bv, bout)
			case rv != "ok" && bv != rv:
				t.Logf("runc %s:\n%s\nberth %s:\n%s", rv, rout, bv, bout)
			case rv != "ok":
				t.Logf("both %s:\n%s", rv, lastLines(rout, 15))
			}
		})
	}
}
