package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// exec joins every namespace and the cgroup of the container's init and runs as asked.
func TestExecJoinsTheContainer(t *testing.T) {
	for _, userns := range []bool{false, true} {
		name := "plain"
		if userns {
			name = "userns"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			if userns {
				withUserNS(e.spec)
			}
			e.writeSpec()
			e.mustBerth("run", "--detach", "--bundle", e.bundle, "ex-1")
			pid := strconv.Itoa(e.state("ex-1").Pid)
			r := e.berth("exec", "ex-1", "sh", "-c", nsLinks+"; cat /proc/self/cgroup; id -u; exit 7")
			if r.code != 7 {
				t.Fatalf("exec: exit %d, want the process's 7; stderr %q", r.code, r.stderr)
			}
			in := parseNsLinks(t, strings.Join(strings.Split(r.stdout, "\n")[:8], "\n"))
			for _, name := range nsTypes {
				if !userns && name == "user" || name == "time" {
					continue // not in the config: the host's, like the init's
				}
				if want := hostNs(t, pid, name); in[name] != want {
					t.Errorf("%s: exec'd process in %s, init in %s", name, in[name], want)
				}
			}
			// Seen from the host, an exec'd process is in every group of the init.
			pidf := filepath.Join(t.TempDir(), "pid")
			e.mustBerth("exec", "--detach", "--pid-file", pidf, "ex-1", "sleep", "30")
			xpid, _ := os.ReadFile(pidf)
			initCg, _ := os.ReadFile("/proc/" + pid + "/cgroup")
			if execCg, _ := os.ReadFile("/proc/" + string(xpid) + "/cgroup"); string(execCg) != string(initCg) {
				t.Errorf("exec'd process in groups\n%s\nthe init in\n%s", execCg, initCg)
			}
			if !strings.HasSuffix(strings.TrimSpace(r.stdout), "\n0") {
				t.Errorf("want uid 0 inside: %q", r.stdout)
			}
			e.mustBerth("delete", "--force", "ex-1")
		})
	}
}

// runc's exec flags shape the process; --process replaces it whole.
func TestExecFlagsAndProcessFile(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "ex-2")
	r := e.mustBerth("exec", "--user", "1000:1001", "--additional-gids", "5", "--cwd", "/tmp", "--env", "FOO=bar",
		"--cap", "CAP_SYS_ADMIN", "--no-new-privs", "ex-2", "sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; grep -E 'CapEff|NoNewPrivs' /proc/self/status")
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 7 || lines[0] != "1000" || lines[1] != "1001" || !strings.Contains(lines[2], "5") || lines[3] != "/tmp" || lines[4] != "bar" {
		t.Fatalf("flags not applied: %q", r.stdout)
	}
	// Effective capabilities of a non-root user are empty unless ambient; no_new_privs is set.
	if !strings.Contains(r.stdout, "NoNewPrivs:\t1") {
		t.Errorf("no_new_privs not set: %q", r.stdout)
	}
	p := specs.Process{Args: []string{"sh", "-c", "echo from-file $X; pwd"}, Env: []string{"X=y", "PATH=/bin"}, Cwd: "/etc"}
	data, _ := json.Marshal(p)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, data, 0o644)
	r = e.mustBerth("exec", "--process", pf, "ex-2")
	if r.stdout != "from-file y\n/etc\n" {
		t.Errorf("--process: %q", r.stdout)
	}
	// Detached with a pid file: the pid is a host pid of the process in the container.
	pidf := filepath.Join(t.TempDir(), "pid")
	e.mustBerth("exec", "--detach", "--pid-file", pidf, "ex-2", "sleep", "50")
	b, _ := os.ReadFile(pidf)
	n, err := strconv.Atoi(string(b))
	if err != nil || !alive(n) {
		t.Fatalf("pid file %q: not a live process", b)
	}
	// Handed over just before its execve: give it a moment to become sleep.
	var cmdline []byte
	for i := 0; i < 200; i++ {
		if cmdline, _ = os.ReadFile("/proc/" + string(b) + "/cmdline"); strings.HasPrefix(string(cmdline), "sleep") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.HasPrefix(string(cmdline), "sleep\x0050") {
		t.Errorf("pid file names %q, want the exec'd sleep", cmdline)
	}
	e.mustBerth("delete", "--force", "ex-2")
	if alive(n) {
		t.Errorf("delete --force left the exec'd process %d", n)
	}
}

// Bad exec requests fail with a clear error and leave the container as it was.
func TestExecRefusals(t *testing.T) {
	e := newEnv(t, "true")
	e.writeSpec()
	e.mustBerth("run", "--detach", "--bundle", e.bundle, "ex-3")
	e.waitStatus("ex-3", "stopped")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "ex-3", "true"}, "stopped"},
		{[]string{"exec", "nosuch", "true"}, "does not exist"},
		{[]string{"exec", "ex-3"}, "cannot exec in a stopped container"},
	} {
		r := e.berth(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
	e2 := newEnv(t, "sleep", "100")
	e2.writeSpec()
	e2.mustBerth("run", "--detach", "--bundle", e2.bundle, "ex-4")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "ex-4", "/no/such/program"}, "no such file"},
		{[]string{"exec", "--cwd", "relative", "ex-4", "true"}, "process.cwd"},
		{[]string{"exec", "--user", "x", "ex-4", "true"}, "--user"},
	} {
		r := e2.berth(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if st := e2.state("ex-4"); st.Status != "running" {
		t.Errorf("container is %s after failed execs", st.Status)
	}
	e2.mustBerth("delete", "--force", "ex-4")
}

// exec --preserve-fds passes the caller's descriptor 3 on; --apparmor on a host without
// AppArmor is refused naming the field.
func TestExecPreserveFdsAndLabels(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "ex-5")
	f := filepath.Join(t.TempDir(), "data")
	os.WriteFile(f, []byte("via fd 3\n"), 0o644)
	fd3, _ := os.Open(f)
	defer fd3.Close()
	cmd := exec.Command(berthBin, "--root", e.root, "exec", "--preserve-fds", "1", "ex-5", "sh", "-c", "cat <&3")
	cmd.ExtraFiles = []*os.File{fd3}
	if r := e.berthCmd(cmd); r.code != 0 || r.stdout != "via fd 3\n" {
		t.Errorf("exec --preserve-fds: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	if apparmor, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.TrimSpace(string(apparmor)) != "Y" {
		if r := e.berth("exec", "--apparmor", "x", "ex-5", "true"); r.code == 0 || !strings.Contains(r.stderr, "process.apparmorProfile") {
			t.Errorf("exec --apparmor without AppArmor: exit %d %q", r.code, r.stderr)
		}
	}
	e.mustBerth("delete", "--force", "ex-5")
}
