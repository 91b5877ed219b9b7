package integration

// berth's command line where runc's suite and callers check it: flags after the container id,
// --debug logs, exec's exit statuses and --ignore-paused, kill with signal 0, --version and
// the help's NAME lines.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupFileOf reads a file of the cgroup that pid is in for controller (a v1 hierarchy, or
// the unified one where the controller has none).
func cgroupFileOf(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	unified := ""
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == controller {
				return readTrim(t, filepath.Join("/sys/fs/cgroup", controller, f[2], file))
			}
		}
		if f[0] == "0" {
			unified = f[2]
		}
	}
	return readTrim(t, filepath.Join("/sys/fs/cgroup", unified, file))
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// Flags after the container id parse as runc's CLI parses them (urfave/cli v1 moves them in
// front); exec keeps everything after the id for the program.
func TestCLIFlagsAfterID(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/berth-test-cli/fl-1"
	defer func() {
		for _, h := range updHierarchies {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, "berth-test-cli"))
		}
	}()
	e.writeSpec()
	e.mustBerth("run", "fl-1", "--detach", "--bundle", e.bundle)
	pid := e.state("fl-1").Pid
	e.mustBerth("update", "fl-1", "--pids-limit", "42")
	if got := cgroupFileOf(t, pid, "pids", "pids.max"); got != "42" {
		t.Errorf("update ID --pids-limit 42: pids.max is %s", got)
	}
	e.mustBerth("update", "fl-1", "--pids-limit=43")
	if got := cgroupFileOf(t, pid, "pids", "pids.max"); got != "43" {
		t.Errorf("update ID --pids-limit=43: pids.max is %s", got)
	}
	// exec: "-la" and "-c" belong to the program, not to berth.
	if r := e.mustBerth("exec", "fl-1", "ls", "-ld", "/"); !strings.HasPrefix(r.stdout, "d") {
		t.Errorf("exec ID ls -ld /: %q", r.stdout)
	}
	if r := e.mustBerth("exec", "fl-1", "sh", "-c", "echo $0", "-x"); strings.TrimSpace(r.stdout) != "-x" {
		t.Errorf("exec ID sh -c 'echo $0' -x: %q", r.stdout)
	}
	// ps passes what follows the id to ps(1).
	if r := e.mustBerth("ps", "fl-1", "-o", "pid,comm"); !strings.Contains(r.stdout, "sleep") {
		t.Errorf("ps ID -o pid,comm: %q", r.stdout)
	}
	e.mustBerth("kill", "fl-1", "KILL", "--all")
	e.waitStatus("fl-1", "stopped")
	e.mustBerth("delete", "fl-1", "--force")
	e.assertGone("fl-1")
}

// --debug logs each step berth and the container's init take at level debug: on stderr, or
// in --log (text or json) and then not on stderr. runc's suite looks for a few of runc's
// words there (debug.bats, exec.bats).
func TestCLIDebugLog(t *testing.T) {
	e := newEnv(t, "echo", "hello")
	e.writeSpec()
	initWords := []string{"nsexec container setup", "child process in init()", "init: closing the pipe to signal completion"}
	r := e.mustBerth("--debug", "run", "--bundle", e.bundle, "dbg-1")
	if strings.TrimSpace(r.stdout) != "hello" || !strings.Contains(r.stderr, "level=debug") {
		t.Fatalf("--debug run: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	for _, w := range initWords {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("--debug run: no %q on stderr:\n%s", w, r.stderr)
		}
	}
	for _, format := range []string{"text", "json"} {
		log := filepath.Join(t.TempDir(), "log")
		r := e.mustBerth("--debug", "--log", log, "--log-format", format, "run", "--bundle", e.bundle, "dbg-2")
		if strings.Contains(r.stderr, "debug") {
			t.Errorf("--log %s: debug lines on stderr too: %q", format, r.stderr)
		}
		data, _ := os.ReadFile(log)
		if format == "json" {
			n := 0
			sc := bufio.NewScanner(strings.NewReader(string(data)))
			for sc.Scan() {
				var m map[string]string
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("--log-format json: %q: %v", sc.Text(), err)
				}
				if m["level"] == "debug" && m["msg"] != "" && m["time"] != "" && m["step"] != "" {
					n++
				}
			}
			if n < 5 {
				t.Errorf("--log-format json: %d debug entries:\n%s", n, data)
			}
		} else if !strings.Contains(string(data), "level=debug") {
			t.Errorf("--log-format text: no level=debug:\n%s", data)
		}
		for _, w := range initWords {
			if !strings.Contains(string(data), w) {
				t.Errorf("--log-format %s: no %q:\n%s", format, w, data)
			}
		}
	}
	// An exec'd process says so in runc's words too.
	e2 := newEnv(t, "sleep", "100")
	e2.writeSpec()
	e2.mustBerth("run", "--detach", "--bundle", e2.bundle, "dbg-3")
	r = e2.mustBerth("--debug", "exec", "dbg-3", "true")
	for _, w := range []string{"nsexec container setup", "child process in init()", "setns_init: about to exec"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("--debug exec: no %q on stderr:\n%s", w, r.stderr)
		}
	}
	// Without --debug, nothing.
	if r := e2.mustBerth("exec", "dbg-3", "true"); r.stderr != "" {
		t.Errorf("exec without --debug wrote %q", r.stderr)
	}
}

// exec exits with the process's status, and 255 when exec itself fails (runc's rule, which
// callers use to tell the two apart); a paused container is refused unless --ignore-paused.
func TestCLIExecStatus(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "--detach", "--bundle", e.bundle, "xs-1")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"exec", "xs-1", "false"}, 1, ""},
		{[]string{"exec", "xs-1", "sh", "-c", "exit 42"}, 42, ""},
		{[]string{"exec", "--pid-file", "/non-existent/directory", "xs-1", "true"}, 255, "exec failed: "},
		{[]string{"exec", "xs-1", "no-such-binary"}, 255, "executable file not found in $PATH"},
		{[]string{"exec", "no_such_container", "true"}, 255, "container does not exist"},
		{[]string{"exec", "xs-1"}, 255, "process args cannot be empty"},
	} {
		r := e.berth(c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}

	// A repeated flag's value is taken whole, commas and all (runc's urfave/cli v1 splits
	// nothing): one variable A="b,c", and --cap values likewise.
	if r := e.berth("exec", "--env", "A=b,c", "--env", "B=d", "xs-1", "sh", "-c", `echo "$A|$B"`); r.code != 0 || strings.TrimSpace(r.stdout) != "b,c|d" {
		t.Errorf("exec --env A=b,c: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	e.mustBerth("pause", "xs-1")
	r := e.berth("exec", "xs-1", "echo", "ok")
	if r.code != 255 || !strings.Contains(r.stderr, "cannot exec in a paused container") {
		t.Errorf("exec in a paused container: exit %d, stderr %q", r.code, r.stderr)
	}
	// --ignore-paused: the process joins the frozen container and runs once it is resumed,
	// which the waiting exec must not keep from happening.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	cmd := exec.CommandContext(ctx, berthBin, "--root", e.root, "exec", "--ignore-paused", "xs-1", "echo", "ok")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForChild(t, cmd.Process.Pid)
	e.mustBerth("resume", "xs-1")
	if err := cmd.Wait(); err != nil || strings.TrimSpace(out.String()) != "ok" {
		t.Errorf("exec --ignore-paused: %v, output %q", err, out.String())
	}
}

// waitForChild waits until pid has started a child (the exec's process).
func waitForChild(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			if data, _ := os.ReadFile(f); len(strings.TrimSpace(string(data))) > 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("berth exec %d never started its process", pid)
}

// kill takes any signal number, 0 included, and --all reaches a stopped container's group
// without error (runc's kill.bats).
func TestCLIKillSignalZero(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "--detach", "--bundle", e.bundle, "k0-1")
	e.mustBerth("kill", "k0-1", "0")
	e.mustBerth("kill", "k0-1", "KILL")
	e.waitStatus("k0-1", "stopped")
	e.mustBerth("kill", "-a", "k0-1", "0")
	if r := e.berth("kill", "k0-1", "0"); r.code != 1 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill of a stopped container: exit %d, stderr %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "k0-1")
}

// --version as go-runc's parseVersion and runc's version.bats read it; the help's NAME line
// as help.bats reads it (checkpoint and restore included: podman probes `checkpoint --help`
// to decide that checkpoint is supported).
func TestCLIVersionAndHelp(t *testing.T) {
	e := newEnv(t)
	for _, flag := range []string{"-v", "--version"} {
		lines := strings.Split(e.mustBerth(flag).stdout, "\n")
		if len(lines) < 3 || !regexp.MustCompile(`^runc version 1\.1\.5\+berth\.[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(lines[0]) ||
			!strings.HasPrefix(lines[1], "commit: ") || lines[2] != "spec: "+specs.Version {
			t.Errorf("%s: %q", flag, lines)
		}
	}
	for _, flag := range []string{"-h", "--help"} {
		lines := strings.Split(e.mustBerth(flag).stdout, "\n")
		if lines[0] != "NAME:" || !strings.Contains(lines[1], "runc - Open Container Initiative runtime") {
			t.Errorf("%s: %q", flag, lines[:2])
		}
	}
	for _, cmd := range []string{"checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps", "restore", "resume", "run", "spec", "start", "state", "update"} {
		lines := strings.Split(e.mustBerth(cmd, "-h").stdout, "\n")
		if lines[0] != "NAME:" || !strings.Contains(lines[1], "berth "+cmd+", as runc "+cmd+" - ") {
			t.Errorf("%s -h: %q", cmd, lines[:2])
		}
	}
	if r := e.berth("foo", "-h"); r.code == 0 || !strings.Contains(r.stderr, "No help topic for 'foo'") {
		t.Errorf("foo -h: exit %d, %q", r.code, r.stderr)
	}
}
