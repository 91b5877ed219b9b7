// Package integration builds the berth binary and runs real containers with it, on a busybox
// rootfs, as root. Each test gets its own --root, so tests can run in any order.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/libcontainer"
)

var (
	berthBin string // the binary under test
	rootfs   string // a shared read-only busybox rootfs
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root: skipping")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-it-")
	if err != nil {
		panic(err)
	}
	// A user-namespaced container's root is an unprivileged uid on the host: it must be able
	// to reach the rootfs, as with runc.
	if err := os.Chmod(dir, 0o755); err != nil {
		panic(err)
	}
	berthBin = filepath.Join(dir, "berth")
	// Built as the Makefile does (scripts/build.sh): static, since the waiting stage runs
	// inside the rootfs, and with musl when musl-gcc is there.
	build := exec.Command("bash", "../scripts/build.sh", berthBin)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("building berth:", err)
		os.Exit(1)
	}
	rootfs = filepath.Join(dir, "rootfs")
	if err := makeBusyboxRootfs(rootfs); err != nil {
		fmt.Println("making rootfs:", err)
		os.Exit(1)
	}
	// A static helper busybox lacks: it prints the session keyring (--no-new-keyring tests).
	helper := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin", "keyring"), "./testdata/keyring")
	helper.Env = append(os.Environ(), "CGO_ENABLED=0")
	helper.Stdout, helper.Stderr = os.Stdout, os.Stderr
	if err := helper.Run(); err != nil {
		fmt.Println("building the keyring helper:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// makeBusyboxRootfs lays out /bin/busybox with a link per applet, plus the directories a
// container needs as mount points.
func makeBusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static is needed: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
				return err
			}
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// env is one test's berth: its own state root and bundle.
type env struct {
	t      *testing.T
	root   string
	bundle string
	spec   *specs.Spec
}

func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), bundle: t.TempDir()}
	e.spec = libcontainer.DefaultSpec()
	e.spec.Root.Path = rootfs
	e.spec.Process.Terminal = false
	if len(args) > 0 {
		e.spec.Process.Args = args
	}
	t.Cleanup(func() { e.cleanup() })
	return e
}

// writeSpec saves e.spec as the bundle's config.json.
func (e *env) writeSpec() {
	e.t.Helper()
	data, err := json.MarshalIndent(e.spec, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// berth runs the binary with this env's --root; stdin is empty.
func (e *env) berth(args ...string) result {
	e.t.Helper()
	return e.berthCmd(exec.Command(berthBin, append([]string{"--root", e.root}, args...)...))
}

func (e *env) berthCmd(cmd *exec.Cmd) result {
	e.t.Helper()
	// Files, not pipes: a detached container inherits berth's stdio and keeps a pipe open
	// long after berth exits.
	out, _ := os.CreateTemp(e.t.TempDir(), "stdout")
	errf, _ := os.CreateTemp(e.t.TempDir(), "stderr")
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running berth: %v", err)
	}
	o, _ := os.ReadFile(out.Name())
	x, _ := os.ReadFile(errf.Name())
	return result{string(o), string(x), code}
}

// mustBerth runs berth and fails the test unless it exits 0.
func (e *env) mustBerth(args ...string) result {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// run writes the spec and runs the container in the foreground.
func (e *env) run(id string, extra ...string) result {
	e.t.Helper()
	e.writeSpec()
	return e.berth(append(append([]string{"run", "--bundle", e.bundle}, extra...), id)...)
}

func (e *env) state(id string) libcontainer.OCIState {
	e.t.Helper()
	r := e.mustBerth("state", id)
	var s libcontainer.OCIState
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state output %q: %v", r.stdout, err)
	}
	return s
}

// waitStatus polls until the container reaches want.
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		r := e.berth("state", id)
		var s libcontainer.OCIState
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &s) == nil {
			if s.Status == want {
				return
			}
			last = s.Status
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("container %s never became %s (last seen %q)", id, want, last)
}

// cleanup force-deletes whatever the test left.
func (e *env) cleanup() {
	ents, _ := os.ReadDir(e.root)
	for _, d := range ents {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			exec.Command(berthBin, "--root", e.root, "delete", "--force", d.Name()).Run()
		}
	}
}

// assertGone checks that nothing of container id is left: no state, no cgroup, no process.
func (e *env) assertGone(id string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		e.t.Errorf("state directory of %s left behind", id)
	}
	for _, h := range []string{"pids", "memory", "cpu", "freezer", "devices"} {
		p := filepath.Join("/sys/fs/cgroup", h, "berth", id)
		if _, err := os.Stat(p); err == nil {
			e.t.Errorf("cgroup %s left behind", p)
		}
	}
	ps, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range ps {
		data, _ := os.ReadFile(p)
		if bytes.HasPrefix(data, []byte("berth\x00init\x00"+id+"\x00")) {
			e.t.Errorf("an init process is left: %s", filepath.Dir(p))
		}
	}
}

// alive says whether pid is a live process (not gone, not a zombie waiting for its reaper).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z' && data[i+2] != 'X'
}
