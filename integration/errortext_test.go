package integration

// berth beside runc 1.1.5 in the situations whose error text a caller reads: containerd's shim
// (via go-runc) matches "container not running", "no such process" and "does not exist" in the
// last error of --log; podman maps "permission denied"/"operation not permitted" to exit 126
// and "executable file not found in"/"no such file or directory" to 127. Each case runs with
// both runtimes, the same bundle and the same flags.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// callerPhrases are the words containerd, go-runc and podman look for in a runtime's errors.
var callerPhrases = []string{
	"container not running", "no such process", "does not exist", "os: process already finished",
	"permission denied", "operation not permitted", "executable file not found in",
	"no such file or directory", "open executable",
}

// rtRun is one runtime's answer: exit status, the last error of its JSON --log, its stderr.
type rtRun struct {
	code        int
	logMsg, err string
}

type runtimeUnderTest struct {
	t         *testing.T
	name, bin string
	root, log string
	prefix    string // of container ids, so that the two runtimes' cgroups never meet
}

func (r *runtimeUnderTest) id(s string) string { return r.prefix + s }

// do runs the runtime with args, "ID:x" standing for container x; ids in the answer read
// "ID:x" again, so that both runtimes' answers compare.
func (r *runtimeUnderTest) do(args ...string) rtRun {
	r.t.Helper()
	full := []string{"--root", r.root, "--log", r.log, "--log-format", "json"}
	for _, a := range args {
		if strings.HasPrefix(a, "ID:") {
			a = r.id(a[3:])
		}
		full = append(full, a)
	}
	os.Truncate(r.log, 0)
	cmd := exec.Command(r.bin, full...)
	// A file, not a pipe: a detached container keeps its runtime's stderr open.
	stderr, ferr := os.CreateTemp(r.t.TempDir(), "stderr")
	if ferr != nil {
		r.t.Fatal(ferr)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	err := cmd.Run()
	errText, _ := os.ReadFile(stderr.Name())
	res := rtRun{err: strings.ReplaceAll(string(errText), r.prefix, "ID:")}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("%s: %v", r.name, err)
	}
	f, _ := os.Open(r.log)
	if f != nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["level"] == "error" {
				res.logMsg, _ = m["msg"].(string)
			}
		}
		f.Close()
	}
	res.logMsg = strings.ReplaceAll(res.logMsg, r.prefix, "ID:")
	return res
}

func (r *runtimeUnderTest) waitStopped(id string) {
	r.t.Helper()
	for i := 0; i < 2000; i++ {
		out, _ := exec.Command(r.bin, "--root", r.root, "state", r.id(id)).Output()
		if strings.Contains(string(out), `"status": "stopped"`) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("%s: %s never stopped", r.name, id)
}

func (r *runtimeUnderTest) cleanup() {
	out, _ := exec.Command(r.bin, "--root", r.root, "list", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		exec.Command(r.bin, "--root", r.root, "delete", "--force", id).Run()
	}
}

func TestErrorTextsAsRunc(t *testing.T) {
	runcBin, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	var rts []*runtimeUnderTest
	for _, rt := range []struct{ name, bin string }{{"runc", runcBin}, {"berth", berthBin}} {
		dir := t.TempDir()
		r := &runtimeUnderTest{t: t, name: rt.name, bin: rt.bin, root: filepath.Join(dir, "root"),
			log: filepath.Join(dir, "log.json"), prefix: "et-" + rt.name[:1] + "-"}
		t.Cleanup(r.cleanup)
		rts = append(rts, r)
	}
	bundles := map[string]string{}
	for name, args := range map[string][]string{
		"sleep": {"sleep", "100"}, "nobin": {"no-such-binary"}, "noabs": {"/no/such/file"},
		"noexec": {"/etc/passwd"}, "rlimit": {"true"},
	} {
		e := newEnv(t, args...)
		if name == "rlimit" {
			// Above what root here may raise RLIMIT_NOFILE to: both refuse with EPERM.
			e.spec.Process.Rlimits = append(e.spec.Process.Rlimits, specsRlimit("RLIMIT_NOFILE", 1<<40))
		}
		e.writeSpec()
		bundles[name] = e.bundle
	}
	// same: the texts must be runc's, byte for byte; otherwise every caller phrase of runc's
	// text must be in berth's (the rest of it names the failing config field instead).
	cases := []struct {
		label string
		args  []string
		same  bool
	}{
		{"kill missing", []string{"kill", "ID:nosuch", "9"}, true},
		{"delete missing", []string{"delete", "ID:nosuch"}, true},
		{"state missing", []string{"state", "ID:nosuch"}, true},
		{"start missing", []string{"start", "ID:nosuch"}, true},
		{"pause missing", []string{"pause", "ID:nosuch"}, true},
		{"ps missing", []string{"ps", "ID:nosuch"}, true},
		{"update missing", []string{"update", "--pids-limit", "10", "ID:nosuch"}, true},
		{"exec missing", []string{"exec", "ID:nosuch", "true"}, true},
		{"run", []string{"run", "-d", "-b", bundles["sleep"], "ID:c1"}, true},
		{"start running", []string{"start", "ID:c1"}, true},
		{"resume running", []string{"resume", "ID:c1"}, true},
		{"delete running", []string{"delete", "ID:c1"}, true},
		{"exec not in PATH", []string{"exec", "ID:c1", "no-such-binary"}, false},
		{"exec no such file", []string{"exec", "ID:c1", "/no/such/file"}, false},
		{"exec not executable", []string{"exec", "ID:c1", "/etc/passwd"}, false},
		{"exec no args", []string{"exec", "ID:c1"}, true},
		{"pause", []string{"pause", "ID:c1"}, true},
		{"pause paused", []string{"pause", "ID:c1"}, true},
		{"exec paused", []string{"exec", "ID:c1", "true"}, true},
		{"delete paused", []string{"delete", "ID:c1"}, true},
		{"resume", []string{"resume", "ID:c1"}, true},
		{"kill", []string{"kill", "ID:c1", "KILL"}, true},
		{"wait", nil, true},
		{"kill stopped", []string{"kill", "ID:c1", "15"}, true},
		{"kill stopped 0", []string{"kill", "ID:c1", "0"}, true},
		{"kill --all stopped", []string{"kill", "--all", "ID:c1", "0"}, true},
		{"start stopped", []string{"start", "ID:c1"}, true},
		{"pause stopped", []string{"pause", "ID:c1"}, true},
		{"resume stopped", []string{"resume", "ID:c1"}, true},
		{"exec stopped", []string{"exec", "ID:c1", "true"}, true},
		{"update stopped", []string{"update", "--pids-limit", "10", "ID:c1"}, true},
		{"delete stopped", []string{"delete", "ID:c1"}, true},
		{"run not in PATH", []string{"run", "-b", bundles["nobin"], "ID:c2"}, false},
		{"create not in PATH", []string{"create", "-b", bundles["nobin"], "ID:c3"}, false},
		{"run no such file", []string{"run", "-b", bundles["noabs"], "ID:c4"}, false},
		{"run not executable", []string{"run", "-b", bundles["noexec"], "ID:c5"}, false},
		{"run rlimit refused", []string{"run", "-b", bundles["rlimit"], "ID:c6"}, false},
	}
	for _, c := range cases {
		if c.args == nil {
			for _, r := range rts {
				r.waitStopped("c1")
			}
			continue
		}
		want, got := rts[0].do(c.args...), rts[1].do(c.args...)
		if got.code != want.code {
			t.Errorf("%s: berth exits %d, runc %d (berth: %q, runc: %q)", c.label, got.code, want.code, got.err, want.err)
		}
		if c.same {
			if got.logMsg != want.logMsg || got.err != want.err {
				t.Errorf("%s:\n berth log %q stderr %q\n  runc log %q stderr %q", c.label, got.logMsg, got.err, want.logMsg, want.err)
			}
			continue
		}
		for _, p := range callerPhrases {
			if strings.Contains(want.logMsg, p) && (!strings.Contains(got.logMsg, p) || !strings.Contains(got.err, p)) {
				t.Errorf("%s: runc says %q, berth %q (stderr %q): %q missing", c.label, want.logMsg, got.logMsg, got.err, p)
			}
		}
		if want.code != 0 && want.logMsg == "" || got.code != 0 && got.logMsg == "" {
			t.Errorf("%s: an error without a log entry (runc %q, berth %q)", c.label, want.logMsg, got.logMsg)
		}
	}
}

func specsRlimit(typ string, n uint64) specs.POSIXRlimit {
	return specs.POSIXRlimit{Type: typ, Hard: n, Soft: n}
}
