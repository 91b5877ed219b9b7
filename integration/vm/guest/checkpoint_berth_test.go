package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// berth's own checkpoint checks, beside the scenarios shared with runc (checkpoint_test.go).

// With a criu that works here, features and --version say checkpoint is supported.
func TestCheckpointBerthSaysSupported(t *testing.T) {
	needCriu(t)
	e := newEnv(t)
	var f struct{ Annotations map[string]string }
	if err := json.Unmarshal([]byte(e.mustBerth("features").stdout), &f); err != nil {
		t.Fatal(err)
	}
	if v := f.Annotations["org.opencontainers.runc.checkpoint.enabled"]; v != "true" {
		t.Errorf("features: checkpoint.enabled %q, want \"true\"", v)
	}
	if v := e.mustBerth("--version").stdout; !strings.Contains(v, "\ncheckpoint: supported (criu 3.") {
		t.Errorf("--version: %q", v)
	}
}

// A restore that criu fails half-way (after berth made the state, the cgroup, and moved criu
// into it) leaves nothing: the copy's config allows one process in its group, criu itself, so
// it cannot fork what it restores. The error is criu's; no state, no cgroup, no process of
// the copy remain; the original, left running at the dump, still counts.
func TestCheckpointRestoreFailureLeavesNothing(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "rf")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--leave-running", "--image-path", img, "--work-path", work, "rf")

	e2 := *e
	e2.bundle = t.TempDir()
	spec := *e.spec
	linux := *spec.Linux
	linux.CgroupsPath += "-fail"
	res := *linux.Resources
	res.Pids = &specs.LinuxPids{Limit: i64(1)}
	linux.Resources = &res
	spec.Linux = &linux
	e2.spec = &spec
	e2.writeSpec()
	work2 := filepath.Join(dir, "work2")
	r := e2.berth("restore", "-d", "--image-path", img, "--work-path", work2, "--bundle", e2.bundle, "rf-copy")
	if r.code == 0 {
		t.Fatalf("restore under pids.max 1 succeeded")
	}
	t.Logf("restore under pids.max 1: %s", strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, "criu restore") {
		t.Errorf("restore error does not say criu's restore failed: %q", r.stderr)
	}
	if s := e2.ociState("rf-copy"); s != nil {
		t.Errorf("failed restore left a container: %+v", s)
	}
	ents, _ := os.ReadDir(e2.root)
	for _, d := range ents {
		if d.Name() != "rf" {
			t.Errorf("failed restore left %s in the root", d.Name())
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", linux.CgroupsPath)); err == nil {
		t.Errorf("failed restore left its cgroup %s", linux.CgroupsPath)
	}
	// A prestart hook that fails, at criu's setup-namespaces notification: berth does not
	// answer it, criu gives up, kills what it restored and exits; nothing is left either.
	e3 := *e
	e3.bundle = t.TempDir()
	spec3 := *e.spec
	linux3 := *spec3.Linux
	linux3.CgroupsPath += "-hook"
	spec3.Linux = &linux3
	spec3.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 3"}}}}
	e3.spec = &spec3
	e3.writeSpec()
	work3 := filepath.Join(dir, "work3")
	r = e3.berth("restore", "-d", "--image-path", img, "--work-path", work3, "--bundle", e3.bundle, "rf-hook")
	if r.code == 0 {
		t.Fatalf("restore with a failing prestart hook succeeded")
	}
	t.Logf("restore with a failing prestart hook: %s", strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, "prestart") {
		t.Errorf("restore error does not name the prestart hook: %q", r.stderr)
	}
	if s := e3.ociState("rf-hook"); s != nil {
		t.Errorf("failed restore left a container: %+v", s)
	}
	ents, _ = os.ReadDir(e3.root)
	for _, d := range ents {
		if d.Name() != "rf" {
			t.Errorf("failed restore left %s in the root", d.Name())
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", linux3.CgroupsPath)); err == nil {
		t.Errorf("failed restore left its cgroup %s", linux3.CgroupsPath)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		if comm, _ := os.ReadFile(p); strings.TrimSpace(string(comm)) == "criu" {
			t.Errorf("a criu process is left after the failed restores: %s", filepath.Dir(p))
		}
	}
	v := out.next(t)
	if w := out.next(t); w != v+1 {
		t.Errorf("the original counts %d, %d after the failed restores", v, w)
	}
}

// restore without --detach waits for the restored container as run does: the counter goes
// on, and when it is killed, restore exits with its status (128+9) and the container is
// deleted.
func TestCheckpointRestoreForeground(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "fg")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "fg")
	last := out.last(t)

	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berthBin, "--root", e.root, "restore", "--image-path", img, "--work-path", filepath.Join(dir, "work2"), "--bundle", e.bundle, "fg")
	cmd.Stdout = outW
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	out2 := readNumbers(outR)
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
	e.mustBerth("kill", "fg", "KILL")
	var code int
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("restore did not return within a minute of the kill")
	}
	if code != 137 {
		t.Errorf("foreground restore exited %d, want 137; stderr %q", code, stderr.String())
	}
	if s := e.ociState("fg"); s != nil {
		t.Errorf("the container is still there after it exited: %+v", s)
	}
}

// Bind mounts come back at restore (criu is told they are external, and binds the sources of
// the restore's config): a directory, a file, and a destination reached through a symlink in
// the rootfs (as runc's checkpoint.bats "bind mount, destination is symlink"), whose real
// path is what criu knows the mount by.
func TestCheckpointBindMounts(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	root := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the rootfs: %v %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "real", "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/real/conf", filepath.Join(root, "conf")); err != nil {
		t.Fatal(err)
	}
	e.spec.Root.Path = root
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "x"), []byte("dir-bind\n"), 0o644)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("file-bind\n"), 0o644)
	conf := t.TempDir()
	os.WriteFile(filepath.Join(conf, "c"), []byte("symlink-bind\n"), 0o644)
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/etc/ckpt-file", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/conf", Type: "bind", Source: conf, Options: []string{"bind"}})
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "bm")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "bm")
	last := out.last(t)
	work2 := filepath.Join(dir, "work2")
	out2, _ := e.detached(work2, "restore", "-d", "--image-path", img, "--work-path", work2, "--bundle", e.bundle, "bm")
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
	r := e.mustBerth("exec", "bm", "cat", "/data/x", "/etc/ckpt-file", "/conf/c", "/real/conf/c")
	if want := "dir-bind\nfile-bind\nsymlink-bind\nsymlink-bind\n"; r.stdout != want {
		t.Errorf("bind mounts after restore read %q, want %q", r.stdout, want)
	}
	expectRestored(e, "bm", e.spec.Linux.CgroupsPath)
}

// A container whose stdin is the host's /dev/null (conmon gives one for a container podman
// does not attach) is checkpointed and restored: the init holds the container's /dev/null
// instead (reopened as runc's init does), since criu cannot dump a descriptor on a host
// mount ("Can't lookup mount=N for fd=0 path=/dev/null", which failed podman's checkpoint).
func TestCheckpointStdinDevNull(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	e.writeSpec()
	start := func(args ...string) *numbers {
		null, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer outW.Close()
		cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
		// A pipe (criu cannot dump a file on a host mount), read only on failure and with a
		// deadline: the container keeps its write end.
		errR, errW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer errR.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = null, outW, errW
		err = cmd.Run()
		errW.Close()
		if err != nil {
			errR.SetReadDeadline(time.Now().Add(5 * time.Second))
			msg := make([]byte, 4096)
			n, _ := errR.Read(msg)
			t.Fatalf("berth %s: %v: %s", strings.Join(args, " "), err, msg[:n])
		}
		return readNumbers(outR)
	}
	out := start("run", "-d", "--bundle", e.bundle, "dn")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "dn")
	last := out.last(t)
	out2 := start("restore", "-d", "--image-path", img, "--work-path", filepath.Join(dir, "work2"), "--bundle", e.bundle, "dn")
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
}

// A container joining a network namespace by path (as a CNI-made pod's): criu leaves the
// namespace out of the image as external (net[inode]:extRootNetNS) and the restore hands it
// back (inherit_fd); the restored container is in that same namespace.
func TestCheckpointExternalNetns(t *testing.T) {
	needCriu(t)
	name := "ckpt-ext"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", name).Run()
	nsPath := "/run/netns/" + name
	e := counterEnv(t, berthBin, counterArgs)
	for i, ns := range e.spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			e.spec.Linux.Namespaces[i].Path = nsPath
		}
	}
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "xn")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "xn")
	last := out.last(t)
	work2 := filepath.Join(dir, "work2")
	out2, _ := e.detached(work2, "restore", "-d", "--image-path", img, "--work-path", work2, "--bundle", e.bundle, "xn")
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
	s := e.ociState("xn")
	if s == nil {
		t.Fatal("no restored container")
	}
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", s.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", st.Ino); got != want {
		t.Errorf("restored init's network namespace %s, want the external %s", got, want)
	}
}

// Nested bind mounts (runc's checkpoint.bats "nested bind mounts"): the inner mount point,
// made in the outer bind's source by the create, is removed before the restore, which must
// make it again there (criu mounts over mount points, it does not make them).
func TestCheckpointNestedBindMounts(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	outer, inner := t.TempDir(), t.TempDir()
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/test", Type: "bind", Source: outer, Options: []string{"rw", "bind"}},
		specs.Mount{Destination: "/test/for/nested", Type: "bind", Source: inner, Options: []string{"rw", "bind"}})
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "nb")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "nb")
	last := out.last(t)
	if err := os.RemoveAll(filepath.Join(outer, "for")); err != nil {
		t.Fatal(err)
	}
	work2 := filepath.Join(dir, "work2")
	out2, _ := e.detached(work2, "restore", "-d", "--image-path", img, "--work-path", work2, "--bundle", e.bundle, "nb")
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
	os.WriteFile(filepath.Join(inner, "x"), []byte("inner\n"), 0o644)
	if r := e.mustBerth("exec", "nb", "cat", "/test/for/nested/x"); r.stdout != "inner\n" {
		t.Errorf("the nested bind after restore reads %q", r.stdout)
	}
}

// The annotation org.criu.config names a criu configuration file for this container, whose
// settings override the request's (runc's checkpoint.bats "container specific CRIU config"):
// here the log file's name, for the dump and for the restore.
func TestCheckpointCriuConfigAnnotation(t *testing.T) {
	needCriu(t)
	e := counterEnv(t, berthBin, counterArgs)
	conf := filepath.Join(t.TempDir(), "criu.conf")
	if err := os.WriteFile(conf, []byte("log-file=from-annotation.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.spec.Annotations = map[string]string{"org.criu.config": conf}
	e.writeSpec()
	out, _ := e.detached("", "run", "-d", "--bundle", e.bundle, "cc")
	out.atLeast(t, 2)
	dir := t.TempDir()
	img, work := filepath.Join(dir, "image"), filepath.Join(dir, "work")
	e.checkpoint(work, "--image-path", img, "--work-path", work, "cc")
	last := out.last(t)
	for name, want := range map[string]bool{"from-annotation.log": true, "dump.log": false} {
		if _, err := os.Stat(filepath.Join(work, name)); (err == nil) != want {
			t.Errorf("after the dump, %s exists: %v, want %v", name, err == nil, want)
		}
	}
	os.Remove(filepath.Join(work, "from-annotation.log"))
	out2, _ := e.detached(work, "restore", "-d", "--image-path", img, "--work-path", work, "--bundle", e.bundle, "cc")
	if v := out2.next(t); v != last+1 {
		t.Errorf("restored counter printed %d first, want %d", v, last+1)
	}
	if _, err := os.Stat(filepath.Join(work, "from-annotation.log")); err != nil {
		t.Errorf("the restore did not log where the annotation's file says: %v", err)
	}
}
