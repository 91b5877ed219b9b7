package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRunOutputAndExitStatus(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo hello; echo oops >&2; exit 3")
	r := e.run("c1")
	if r.code != 3 {
		t.Fatalf("exit status %d, want 3 (stderr %q)", r.code, r.stderr)
	}
	if r.stdout != "hello\n" || !strings.Contains(r.stderr, "oops") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	e.assertGone("c1")
}

func TestRunKilledBySignalExits128PlusSignal(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", e.bundle, "c1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	e.waitStatus("c1", "running")
	e.mustBerth("kill", "c1", "9")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("berth run exited with %v, want status 137", err)
	}
	e.assertGone("c1")
}

func TestRunForwardsSignals(t *testing.T) {
	e := newEnv(t, "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done")
	e.writeSpec()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", e.bundle, "c1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("container did not start: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	rest := make([]byte, 64)
	n, _ := stdout.Read(rest)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("berth run exited with %v, want status 7", err)
	}
	if !strings.Contains(string(rest[:n]), "got-term") {
		t.Fatalf("trap did not run: %q", rest[:n])
	}
}

// Every signal a process may send berth run reaches the container, fault signals sent with
// kill and SIGPIPE among them, and none stops or kills berth (internal/sigrelay). SIGWINCH is
// the terminal's (none here), SIGCHLD berth's own.
func TestRunForwardsEverySignal(t *testing.T) {
	sigs := []string{"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "USR1", "SEGV", "USR2",
		"PIPE", "ALRM", "STKFLT", "CONT", "TSTP", "TTIN", "TTOU", "XCPU", "XFSZ", "VTALRM", "IO",
		"PWR", "SYS", "35", "50", "64"}
	script := ""
	for _, s := range sigs {
		script += "trap 'echo got-" + s + "' " + s + "; "
	}
	e := newEnv(t, "sh", "-c", script+"trap 'echo got-TERM; exit 7' TERM; echo ready; while true; do sleep 0.02; done")
	e.writeSpec()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", e.bundle, "c1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	for _, s := range append(sigs, "WINCH", "TERM") {
		num := unix.SignalNum("SIG" + s)
		if num == 0 {
			n, _ := strconv.Atoi(s)
			num = syscall.Signal(n)
		}
		if err := cmd.Process.Signal(num); err != nil {
			t.Fatalf("SIG%s: %v", s, err)
		}
		if s == "WINCH" {
			continue
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "got-"+s+"\n" {
			t.Fatalf("after SIG%s the container printed %q (%v)", s, line, err)
		}
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("berth run exited with %v, want status 7", err)
	}
}

func TestLifecycleCreateStartKillDelete(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo started > /dev/shm/x; sleep 1000")
	e.writeSpec()
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	e.mustBerth("create", "--bundle", e.bundle, "--pid-file", pidFile, "c1")

	s := e.state("c1")
	if s.Status != "created" || s.Pid <= 0 || s.ID != "c1" || s.Bundle != e.bundle || s.OCIVersion == "" || s.Rootfs != rootfs {
		t.Fatalf("after create: %+v", s)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || string(data) != strconv.Itoa(s.Pid) {
		t.Fatalf("pid file %q (%v), want %d with no newline", data, err, s.Pid)
	}
	// The user's program must not run before start.
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(s.Pid) + "/cmdline")
	// (berth init hands over just before it becomes the berth-wait stage)
	if !strings.HasPrefix(string(cmdline), "berth-wait\x00") && !strings.HasPrefix(string(cmdline), "berth\x00init\x00c1\x00") {
		t.Fatalf("before start, init runs %q", cmdline)
	}
	if r := e.berth("start", "c1"); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("c1", "running")
	if r := e.berth("start", "c1"); r.code == 0 {
		t.Fatal("starting a running container succeeded")
	}
	if r := e.berth("delete", "c1"); r.code == 0 || !strings.Contains(r.stderr, "not stopped") {
		t.Fatalf("delete of a running container: exit %d %q", r.code, r.stderr)
	}
	e.mustBerth("kill", "c1", "KILL")
	e.waitStatus("c1", "stopped")
	if s := e.state("c1"); s.Pid != 0 {
		t.Fatalf("stopped container reports pid %d", s.Pid)
	}
	if r := e.berth("kill", "c1"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Fatalf("kill of a stopped container: exit %d %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "c1")
	e.assertGone("c1")
	if r := e.berth("state", "c1"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("state after delete: exit %d %q", r.code, r.stderr)
	}
}

func TestDeleteForceKillsRunningContainer(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeSpec()
	e.mustBerth("run", "--detach", "--bundle", e.bundle, "c1")
	pid := e.state("c1").Pid
	e.mustBerth("delete", "--force", "c1")
	if alive(pid) {
		t.Fatalf("init %d still alive after delete --force", pid)
	}
	e.assertGone("c1")
	// Deleting what does not exist: an error without --force, fine with it (as runc).
	if r := e.berth("delete", "c1"); r.code == 0 {
		t.Fatal("delete of a missing container succeeded")
	}
	e.mustBerth("delete", "--force", "c1")
}

func TestDeleteCreatedContainer(t *testing.T) {
	e := newEnv(t, "true")
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "c1")
	e.mustBerth("delete", "c1") // runc deletes created containers without --force
	e.assertGone("c1")
}

func TestKillSignalsByNameAndNumber(t *testing.T) {
	for _, sig := range []string{"TERM", "SIGTERM", "15"} {
		t.Run(sig, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
			e.writeSpec()
			e.mustBerth("run", "-d", "--bundle", e.bundle, "c1")
			// sh, pid 1 of its namespace, ignores TERM until its trap is set: send it
			// again until the container stops (a loaded machine may take a while).
			for i := 0; ; i++ {
				e.mustBerth("kill", "c1", sig)
				if stoppedWithin(e, "c1", 200*time.Millisecond) {
					break
				}
				if i == 50 {
					t.Fatalf("kill %s: the container never stopped", sig)
				}
			}
		})
	}
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "c1")
	if r := e.berth("kill", "c1", "NOTASIGNAL"); r.code == 0 || !strings.Contains(r.stderr, "unknown signal") {
		t.Fatalf("bad signal: %d %q", r.code, r.stderr)
	}
}

func TestKillAll(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "c1")
	time.Sleep(50 * time.Millisecond)
	e.mustBerth("kill", "--all", "c1", "9")
	e.waitStatus("c1", "stopped")
}

func TestDuplicateAndInvalidIDs(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "c1")
	r := e.berth("create", "--bundle", e.bundle, "c1")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate id: exit %d %q", r.code, r.stderr)
	}
	if s := e.state("c1"); s.Status != "created" {
		t.Fatalf("the first c1 was disturbed: %+v", s)
	}
	for _, id := range []string{"a/b", "..", "../x", ".hidden", "a b"} {
		r := e.berth("create", "--bundle", e.bundle, id)
		if r.code == 0 || !strings.Contains(r.stderr, "container id") {
			t.Errorf("id %q: exit %d %q", id, r.code, r.stderr)
		}
	}
	if r := e.berth("create", "--bundle", e.bundle); r.code == 0 || !strings.Contains(r.stderr, "missing container id") {
		t.Errorf("no id: exit %d %q", r.code, r.stderr)
	}
	ents, _ := os.ReadDir(e.root)
	if len(ents) != 1 {
		t.Errorf("root holds %d entries, want only c1", len(ents))
	}
}

func TestListFormats(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "b1")
	e.mustBerth("run", "-d", "--bundle", e.bundle, "a1")
	if r := e.mustBerth("list", "-q"); r.stdout != "a1\nb1\n" {
		t.Fatalf("list -q: %q", r.stdout)
	}
	r := e.mustBerth("list", "--format", "json")
	var states []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(r.stdout), &states); err != nil || len(states) != 2 ||
		states[0].Status != "running" || states[1].Status != "created" {
		t.Fatalf("list json: %q %v", r.stdout, err)
	}
	r = e.mustBerth("list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "running") {
		t.Fatalf("list table:\n%s", r.stdout)
	}
}

func TestStateReportsAnnotations(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.spec.Annotations = map[string]string{"org.example.key": "value"}
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "c1")
	r := e.mustBerth("state", "c1")
	var raw map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state lacks %q: %s", k, r.stdout)
		}
	}
	if a, _ := raw["annotations"].(map[string]any); a["org.example.key"] != "value" {
		t.Errorf("annotations: %v", raw["annotations"])
	}
}

func TestRunDetachAndKeep(t *testing.T) {
	e := newEnv(t, "sh", "-c", "exit 0")
	e.writeSpec()
	e.mustBerth("run", "--keep", "--bundle", e.bundle, "c1")
	if s := e.state("c1"); s.Status != "stopped" {
		t.Fatalf("--keep: %+v", s)
	}
	e.mustBerth("delete", "c1")
	e.assertGone("c1")
}

// A create killed before its directory was published leaves a ".new-*" directory; a later
// create removes it once it is old, and never one a create in progress is using.
func TestAbandonedCreateDirsRemoved(t *testing.T) {
	e := newEnv(t, "true")
	e.writeSpec()
	old := filepath.Join(e.root, ".new-gone-1")
	fresh := filepath.Join(e.root, ".new-busy-1")
	for _, d := range []string{old, fresh} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "state.json"), []byte("{}"), 0o600)
	}
	past := time.Now().Add(-2 * time.Minute)
	os.Chtimes(old, past, past)
	e.mustBerth("run", "--bundle", e.bundle, "ab-1")
	if _, err := os.Stat(old); err == nil {
		t.Errorf("an abandoned create directory was left")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent create directory was removed: %v", err)
	}
	if r := e.mustBerth("list", "-q"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("list shows %q", r.stdout)
	}
}

// stoppedWithin says whether container id reaches "stopped" within d.
func stoppedWithin(e *env, id string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r := e.berth("state", id); r.code == 0 && strings.Contains(r.stdout, `"status": "stopped"`) {
			return true
		}
	}
	return false
}
