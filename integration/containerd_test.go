package integration

// berth under containerd: a private containerd (the Debian package, CRI disabled, its own
// root, state and sockets), an image imported from an archive this test builds, and ctr
// running it with the shim io.containerd.runc.v2 told to use berth (--runc-binary) in runc's
// place. The wrapper in front of berth records every command line the shim used.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/libcontainer"
)

// containerd is one private daemon and the ctr flags that reach it.
type containerd struct {
	t        *testing.T
	dir      string
	sock     string
	ns       string // the containerd namespace (also the cgroup parent ctr gives containers)
	runcRoot string // --runc-root: berth's state root is runcRoot/ns
	wrapper  string // the runtime binary the shim runs
	argv     string // the wrapper's record of command lines
	image    string
	cmd      *exec.Cmd
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	needTools(t, "containerd", "ctr", "containerd-shim-runc-v2")
	archive := compatArchive(t)
	dir := t.TempDir()
	c := &containerd{t: t, dir: dir, sock: filepath.Join(dir, "containerd.sock"),
		ns: fmt.Sprintf("ctrd-%d", os.Getpid()), runcRoot: filepath.Join(dir, "runc"),
		image: "docker.io/berth/ctrd-busybox:latest"}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	c.wrapper, c.argv = installArgvWrapper(t, bin, "berth")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "opt"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("containerd", "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(c.stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r := c.ctrRun("version"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not come up:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.must("images", "import", "--base-name", "docker.io/berth/ctrd-busybox", archive)
	return c
}

// ctrRun runs ctr against this daemon, in its namespace.
func (c *containerd) ctrRun(args ...string) toolResult {
	c.t.Helper()
	return runTool(c.t, nil, 60*time.Second, "ctr", append([]string{"--address", c.sock, "--namespace", c.ns}, args...)...)
}

func (c *containerd) must(args ...string) toolResult {
	c.t.Helper()
	r := c.ctrRun(args...)
	if r.code != 0 {
		c.t.Fatalf("ctr %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// with is c for a subtest: failures are reported on t.
func (c *containerd) with(t *testing.T) *containerd {
	cc := *c
	cc.t = t
	return &cc
}

// runArgs is `ctr run` with berth as the runtime binary.
func (c *containerd) runArgs(flags ...string) []string {
	return append([]string{"run", "--runc-binary", c.wrapper, "--runc-root", c.runcRoot, "--fifo-dir", c.fifoDir()}, flags...)
}

// fifoDir keeps ctr's stdio fifos in the test's directory (not /run/containerd/fifo).
func (c *containerd) fifoDir() string { return filepath.Join(c.dir, "fifo") }

// berthState asks berth itself (in the shim's --root) about a container.
func (c *containerd) berthState(id string) (libcontainer.OCIState, error) {
	var s libcontainer.OCIState
	out, err := exec.Command(berthBin, "--root", filepath.Join(c.runcRoot, c.ns), "state", id).CombinedOutput()
	if err != nil {
		return s, fmt.Errorf("berth state %s: %v: %s", id, err, out)
	}
	return s, json.Unmarshal(out, &s)
}

// taskStatus is the STATUS column of `ctr task ls` for id ("" if not listed).
func (c *containerd) taskStatus(id string) (pid int, status string) {
	c.t.Helper()
	for _, line := range strings.Split(c.must("task", "ls").stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, _ = strconv.Atoi(f[1])
			return pid, f[2]
		}
	}
	return 0, ""
}

// stop removes whatever tasks and containers are left, stops the daemon and cleans up.
func (c *containerd) stop() {
	if r := runTool(c.t, nil, 30*time.Second, "ctr", "--address", c.sock, "--namespace", c.ns, "containers", "ls", "-q"); r.code == 0 {
		for _, id := range strings.Fields(r.stdout) {
			runTool(c.t, nil, 30*time.Second, "ctr", "--address", c.sock, "--namespace", c.ns, "task", "kill", "-s", "SIGKILL", id)
			runTool(c.t, nil, 30*time.Second, "ctr", "--address", c.sock, "--namespace", c.ns, "task", "delete", "--force", id)
			runTool(c.t, nil, 30*time.Second, "ctr", "--address", c.sock, "--namespace", c.ns, "containers", "delete", id)
		}
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	unmountUnder(c.dir)
	rmdirCgroups(c.ns)
}

func TestContainerd(t *testing.T) {
	c := startContainerd(t)

	t.Run("run-output-and-exit-status", func(t *testing.T) {
		c := c.with(t)
		r := c.ctrRun(append(c.runArgs("--rm", c.image, "ctrd-run"), "sh", "-c", "echo hello from berth; exit 7")...)
		if r.code != 7 || !strings.Contains(r.stdout, "hello from berth") {
			t.Errorf("ctr run: want exit 7 and the output, got %s", r)
		}
		if _, err := c.berthState("ctrd-run"); err == nil {
			t.Errorf("ctrd-run still known to berth after ctr run --rm")
		}
	})

	t.Run("detached-exec-ps-pause-metrics-kill-delete", func(t *testing.T) {
		c := c.with(t)
		const id = "ctrd-det"
		// The shell exits on SIGTERM (as pid 1 it would otherwise ignore it).
		c.must(append(c.runArgs("-d", c.image, id), "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")...)
		pid, status := c.taskStatus(id)
		if status != "RUNNING" || pid <= 0 {
			t.Fatalf("after ctr run -d: task %s is %q (pid %d), want RUNNING", id, status, pid)
		}
		if s, err := c.berthState(id); err != nil || s.Status != "running" || s.Pid != pid {
			t.Errorf("berth state: %+v, %v; want running with pid %d", s, err, pid)
		}

		// exec: output and exit status of the exec'd process, in the container's namespaces.
		r := c.ctrRun("task", "exec", "--fifo-dir", c.fifoDir(), "--exec-id", "ctrd-e1", id, "sh", "-c", "echo exec-out; readlink /proc/1/exe; exit 4")
		if r.code != 4 || !strings.Contains(r.stdout, "exec-out") || !strings.Contains(r.stdout, "/bin/busybox") {
			t.Errorf("ctr task exec: want exit 4, exec-out and pid 1 being busybox, got %s", r)
		}

		// ps: the init, then also a detached exec'd process.
		c.must("task", "exec", "--fifo-dir", c.fifoDir(), "--detach", "--exec-id", "ctrd-e2", id, "sleep", "1000")
		var pids []int
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids = nil
			for _, line := range strings.Split(c.must("task", "ps", id).stdout, "\n")[1:] {
				if f := strings.Fields(line); len(f) > 0 {
					if p, err := strconv.Atoi(f[0]); err == nil {
						pids = append(pids, p)
					}
				}
			}
			if len(pids) >= 3 || time.Now().After(deadline) { // init, its sleep 0.1, sleep 1000
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		found := false
		for _, p := range pids {
			found = found || p == pid
		}
		if !found || len(pids) < 3 {
			t.Errorf("ctr task ps: pids %v, want the init %d and the exec'd sleep among at least 3", pids, pid)
		}

		// pause / resume: containerd's status and berth's agree, the freezer holds.
		c.must("task", "pause", id)
		if _, st := c.taskStatus(id); st != "PAUSED" {
			t.Errorf("after ctr task pause: %q, want PAUSED", st)
		}
		if s, err := c.berthState(id); err != nil || s.Status != "paused" {
			t.Errorf("berth state after pause: %+v, %v", s, err)
		}
		if fs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", c.ns, id, "freezer.state")); err == nil && strings.TrimSpace(string(fs)) != "FROZEN" {
			t.Errorf("freezer.state while paused: %q", fs)
		}
		c.must("task", "resume", id)
		if _, st := c.taskStatus(id); st != "RUNNING" {
			t.Errorf("after ctr task resume: %q, want RUNNING", st)
		}
		if s, err := c.berthState(id); err != nil || s.Status != "running" {
			t.Errorf("berth state after resume: %+v, %v", s, err)
		}

		// metrics: containerd reads the cgroup of the pid berth wrote to the pid file.
		r = c.must("task", "metrics", id)
		for _, want := range []string{"memory.usage_in_bytes", "pids.current"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("ctr task metrics: no %s in\n%s", want, r.stdout)
			}
		}
		var m struct {
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
				} `json:"usage"`
			} `json:"memory"`
		}
		r = c.must("task", "metrics", "--format", "json", id)
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.Pids.Current < 2 || m.Memory.Usage.Usage == 0 {
			t.Errorf("ctr task metrics --format json: %+v (%v), want pids.current >= 2 and some memory used:\n%s", m, err, r.stdout)
		}

		// kill (SIGTERM by default): the task stops with the shell's status.
		c.must("task", "kill", id)
		deadline = time.Now().Add(10 * time.Second)
		for {
			if _, st := c.taskStatus(id); st == "STOPPED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s not stopped 10s after ctr task kill", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("init %d still alive after the task stopped", pid)
		}
		r = c.must("task", "delete", id)
		c.must("containers", "delete", id)
		if _, err := c.berthState(id); err == nil {
			t.Errorf("%s still known to berth after ctr task delete", id)
		}
		for _, h := range []string{"memory", "pids", "freezer"} {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, c.ns, id)); err == nil {
				t.Errorf("cgroup %s/%s/%s left after delete", h, c.ns, id)
			}
		}
	})

	t.Run("kill-sigkill-running", func(t *testing.T) {
		c := c.with(t)
		const id = "ctrd-kill"
		c.must(append(c.runArgs("-d", c.image, id), "sleep", "1000")...)
		pid, _ := c.taskStatus(id)
		c.must("task", "kill", "--signal", "SIGKILL", id)
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("init %d alive after ctr task kill --signal SIGKILL", pid)
		}
		if r := c.must("task", "delete", id); !strings.Contains(r.stdout+r.stderr, "137") {
			t.Errorf("ctr task delete: want the exit status 137 reported, got %s", r)
		}
		c.must("containers", "delete", id)
	})

	t.Run("tty", func(t *testing.T) {
		c := c.with(t)
		master, slave := openPty(t)
		cmd := exec.Command("ctr", append([]string{"--address", c.sock, "--namespace", c.ns},
			append(c.runArgs("--rm", "-t", c.image, "ctrd-tty"), "sh", "-c", "tty; read x; echo got $x; exit 5")...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		out := readUntil(master, "/dev/pts/", 10*time.Second)
		if !strings.Contains(out, "/dev/pts/") {
			t.Errorf("ctr run -t: the container's stdin is not a pty: %q", out)
		}
		master.Write([]byte("typed\r"))
		out += readUntil(master, "got typed", 10*time.Second)
		if !strings.Contains(out, "got typed") {
			t.Errorf("ctr run -t: input not relayed: %q", out)
		}
		select {
		case err := <-waited:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
				t.Errorf("ctr run -t: exit %v, want 5 (output %q)", err, out)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("ctr run -t did not exit (output %q)", out)
		}
	})

	t.Run("exec-tty", func(t *testing.T) {
		c := c.with(t)
		const id = "ctrd-exec-tty"
		c.must(append(c.runArgs("-d", c.image, id), "sleep", "1000")...)
		defer func() {
			c.ctrRun("task", "kill", "-s", "SIGKILL", id)
			time.Sleep(100 * time.Millisecond)
			c.ctrRun("task", "delete", "--force", id)
			c.ctrRun("containers", "delete", id)
		}()
		master, slave := openPty(t)
		cmd := exec.Command("ctr", "--address", c.sock, "--namespace", c.ns, "task", "exec", "--fifo-dir", c.fifoDir(), "-t",
			"--exec-id", "ctrd-et", id, "sh", "-c", "tty; exit 6")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		out := readUntil(master, "/dev/pts/", 10*time.Second)
		if !strings.Contains(out, "/dev/pts/") {
			t.Errorf("ctr task exec -t: not a pty: %q", out)
		}
		select {
		case err := <-waited:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 6 {
				t.Errorf("ctr task exec -t: exit %v, want 6 (output %q)", err, out)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("ctr task exec -t did not exit (output %q)", out)
		}
	})

	t.Run("memory-limit", func(t *testing.T) {
		c := c.with(t)
		// ctr's default spec mounts no cgroupfs (the CRI plugin adds one): ask for it as CRI
		// does, to read the limit from inside.
		r := c.ctrRun(append(c.runArgs("--rm", "--memory-limit", "67108864",
			"--mount", "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev", c.image, "ctrd-mem"),
			"sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "67108864" {
			t.Errorf("ctr run --memory-limit 67108864: %s", r)
		}
	})

	t.Run("bad-command-error", func(t *testing.T) {
		c := c.with(t)
		// A failed create: the shim reports the last error berth logged to --log.
		r := c.ctrRun(append(c.runArgs("--rm", c.image, "ctrd-bad"), "/no/such/program")...)
		if r.code == 0 || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("running a missing program: want a failure naming it, got %s", r)
		}
		c.ctrRun("containers", "delete", "ctrd-bad")
	})

	use := logArgv(t, "containerd's shim", readArgv(t, c.argv))
	if allSubtests() {
		for _, cmd := range []string{"create", "start", "exec", "ps", "pause", "resume", "kill", "delete"} {
			if use[cmd] == nil {
				t.Errorf("the shim never called berth %s", cmd)
			}
		}
	}
}
