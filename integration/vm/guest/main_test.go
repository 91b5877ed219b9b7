package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/libcontainer"
)

var (
	berthBin string
	rootfs   string // shared busybox rootfs, also holding this binary as /helper
)

func TestMain(m *testing.M) {
	// This binary doubles as the program some containers run (see helper.go).
	if role := os.Getenv("BERTH_GUEST_ROLE"); role != "" {
		os.Exit(helperMain(role))
	}
	if os.Getenv("BERTH_VM_GUEST") == "" {
		fmt.Println("guest: these tests run inside the VM started by integration/vm; skipping")
		os.Exit(0)
	}
	berthBin = os.Getenv("BERTH_BIN")
	rootfs = "/tmp/rootfs"
	if err := makeRootfs(rootfs); err != nil {
		fmt.Println("making rootfs:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func makeRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile("/bin/busybox", filepath.Join(dir, "bin/busybox")); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(self, filepath.Join(dir, "helper")); err != nil {
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
	// Mount point for the block device the device tests bind in.
	if err := os.WriteFile(filepath.Join(dir, "ram0"), nil, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

// env is one test's container: its state root, bundle and spec.
type env struct {
	t      *testing.T
	root   string
	bundle string
	spec   *specs.Spec
	bin    string // the runtime binary when not berth (checkpoint_test.go runs runc too)
}

func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), bundle: t.TempDir()}
	e.spec = libcontainer.DefaultSpec()
	e.spec.Root.Path = rootfs
	e.spec.Process.Terminal = false
	e.spec.Process.Args = args
	t.Cleanup(func() {
		ents, _ := os.ReadDir(e.root)
		for _, d := range ents {
			if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				exec.Command(e.runtime(), "--root", e.root, "delete", "--force", d.Name()).Run()
			}
		}
	})
	return e
}

// runtime is the binary the env's commands run: berth, unless e.bin says another.
func (e *env) runtime() string {
	if e.bin != "" {
		return e.bin
	}
	return berthBin
}

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

func (e *env) berth(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.runtime(), append([]string{"--root", e.root}, args...)...)
	// Files, not pipes: a detached container keeps berth's stdio open.
	dir := e.t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	errf, _ := os.Create(filepath.Join(dir, "stderr"))
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

func (e *env) mustBerth(args ...string) result {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// run writes the spec and runs the container in the foreground.
func (e *env) run(id string) result {
	e.t.Helper()
	e.writeSpec()
	return e.berth("run", "--bundle", e.bundle, id)
}

// startDetached creates and starts the container and returns its init pid.
func (e *env) startDetached(id string) int {
	e.t.Helper()
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, id)
	e.mustBerth("start", id)
	var s libcontainer.OCIState
	r := e.mustBerth("state", id)
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state: %v: %s", err, r.stdout)
	}
	return s.Pid
}

const cgroupRoot = "/sys/fs/cgroup"

// cg reads a file of the cgroup at path (relative to the hierarchy root).
func cg(t *testing.T, path, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cgroupRoot, path, file))
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

// expectFile checks that a cgroup file reads back as want.
func expectFile(t *testing.T, path, file, want string) {
	t.Helper()
	if got := cg(t, path, file); got != want {
		t.Errorf("%s/%s = %q, want %q", path, file, got, want)
	}
}

// keyed reads one "key value" entry of a flat keyed file (memory.events, cpu.stat, ...).
func keyed(t *testing.T, path, file, key string) uint64 {
	t.Helper()
	for _, l := range strings.Split(cg(t, path, file), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n
		}
	}
	t.Fatalf("%s/%s has no %q", path, file, key)
	return 0
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func i64(v int64) *int64    { return &v }
func u64(v uint64) *uint64  { return &v }
func u16(v uint16) *uint16  { return &v }
func boolp(v bool) *bool    { return &v }
func strp(v string) *string { return &v }
