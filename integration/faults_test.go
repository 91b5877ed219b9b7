package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// oneLine fails the test unless a failing berth said why on one line, without a Go panic.
func oneLine(t *testing.T, what string, r result) {
	t.Helper()
	msg := strings.TrimSpace(r.stderr)
	if r.code == 0 || msg == "" || strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic") {
		t.Errorf("%s: exit %d, stderr %q: want a failure explained on one line", what, r.code, r.stderr)
	}
}

// The state root on a tmpfs that is full: create fails with one line, and nothing of the
// container is left (no state directory, half-published or not; no cgroup; no process).
func TestFaultStateRootFull(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	if err := unix.Mount("tmpfs", e.root, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(e.root, unix.MNT_DETACH) })
	// Fill it: the last write fails with ENOSPC.
	f, err := os.Create(filepath.Join(e.root, ".fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	e.writeSpec()
	r := e.berth("create", "--bundle", e.bundle, "full-1")
	t.Logf("create on a full state root: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	oneLine(t, "create on a full state root", r)
	e.assertGone("full-1")
	ents, _ := os.ReadDir(e.root)
	for _, d := range ents {
		if d.Name() != ".fill" && !strings.HasSuffix(d.Name(), ".lock") {
			t.Errorf("left in the state root: %s", d.Name())
		}
	}
	// With room again, the same container can be made.
	os.Remove(filepath.Join(e.root, ".fill"))
	e.mustBerth("create", "--bundle", e.bundle, "full-1")
	e.mustBerth("delete", "--force", "full-1")
	e.assertGone("full-1")
}

// RLIMIT_NOFILE of 20 for berth itself: create and start either work or fail with one line,
// and delete --force leaves nothing.
func TestFaultFewDescriptors(t *testing.T) {
	e := newEnv(t, "true")
	e.writeSpec()
	lim := func(args ...string) result {
		// prlimit for the berth process only (the test keeps its own limit).
		cmd := exec.Command("prlimit", append([]string{"--nofile=20:20", berthBin, "--root", e.root}, args...)...)
		return e.berthCmd(cmd)
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit not installed")
	}
	r := lim("create", "--bundle", e.bundle, "fd-1")
	t.Logf("create with 20 descriptors: exit %d %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != 0 {
		oneLine(t, "create with 20 descriptors", r)
	} else if r = lim("start", "fd-1"); r.code != 0 {
		oneLine(t, "start with 20 descriptors", r)
	}
	e.berth("delete", "--force", "fd-1")
	e.assertGone("fd-1")
	r = lim("run", "--bundle", e.bundle, "fd-2")
	t.Logf("run with 20 descriptors: exit %d %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != 0 {
		oneLine(t, "run with 20 descriptors", r)
	}
	e.berth("delete", "--force", "fd-2")
	e.assertGone("fd-2")
}

// The bundle's rootfs removed between create and start: the container holds its root
// already, so start works as under runc, or fails with one line; delete leaves nothing.
func TestFaultRootfsRemovedBeforeStart(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo started")
	own := filepath.Join(e.bundle, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, own).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	e.spec.Root.Path = "rootfs"
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "gone-1")
	if err := os.RemoveAll(own); err != nil {
		t.Fatalf("removing the rootfs: %v", err)
	}
	r0 := e.berth("start", "gone-1")
	t.Logf("start without the bundle's rootfs: exit %d %s", r0.code, strings.TrimSpace(r0.stderr))
	if r := r0; r.code != 0 {
		oneLine(t, "start without the bundle's rootfs", r)
	}
	e.berth("delete", "--force", "gone-1")
	e.assertGone("gone-1")
	// A new create on the removed rootfs is refused before anything is made.
	r := e.berth("create", "--bundle", e.bundle, "gone-2")
	oneLine(t, "create without rootfs", r)
	if !strings.Contains(r.stderr, "root.path") {
		t.Errorf("create without rootfs: %q does not name root.path", r.stderr)
	}
	e.assertGone("gone-2")
}

// The image store's disk fills in the middle of a layer: load fails with one line, no layer
// is left under its final name half-written (nor a temporary one), and once there is room
// the next load succeeds.
func TestFaultImageStoreFull(t *testing.T) {
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*7919 + i>>8) // does not compress away
	}
	if err := os.WriteFile(filepath.Join(big, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	for _, c := range [][]string{
		{"umoci", "init", "--layout", img},
		{"umoci", "new", "--image", img + ":t"},
		{"umoci", "insert", "--image", img + ":t", rootfs, "/"},
		{"umoci", "insert", "--image", img + ":t", big, "/big"},
	} {
		if err := sh("", c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	// Room for the busybox layer, not for the 4 MiB one.
	if err := unix.Mount("tmpfs", e.root, "tmpfs", 0, "size=3m,mode=0700"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(e.root, unix.MNT_DETACH) })
	r := e.berth("image", "load", img+":t")
	t.Logf("image load on a full store: exit %d %s", r.code, strings.TrimSpace(r.stderr))
	oneLine(t, "image load on a full store", r)
	layers, _ := os.ReadDir(filepath.Join(e.root, ".images", "layers"))
	for _, l := range layers {
		if strings.HasPrefix(l.Name(), ".tmp-") {
			t.Errorf("a temporary layer is left: %s", l.Name())
			continue
		}
		if l.IsDir() {
			if _, err := os.Stat(filepath.Join(e.root, ".images", "layers", l.Name(), "big", "blob")); err == nil {
				t.Errorf("the layer that did not fit is stored as %s", l.Name())
			}
		}
	}
	if err := unix.Mount("", e.root, "", unix.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("remount: %v", err)
	}
	e.mustBerth("image", "load", img+":t")
	e.mustBerth("run", "--image", img+":t", "img-full", "--", "test", "-s", "/big/blob")
}

// A create SIGKILLed before it published the container's directory leaves it under its
// staging name (<root>/.new-<id>-<digits>, a lock and a state): `delete --force <id>` then
// clears it at once, as runc removes the half-made directory of an aborted create, and not
// only a later create a minute on. Found by the soak (TestSoak), where a killed create left
// such a directory behind. Another id's staging directory and one whose create still holds
// its lock stay.
func TestFaultKilledCreateStaging(t *testing.T) {
	e := newEnv(t, "true")
	stage := func(name string) string {
		d := filepath.Join(e.root, name)
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "lock"), nil, 0o600)
		os.WriteFile(filepath.Join(d, "state.json"), []byte(`{"id":"x"}`), 0o600)
		return d
	}
	mine := stage(".new-kc-1-4082271530")
	other := stage(".new-kc-1-b-123")
	busy := stage(".new-kc-1-777")
	f, err := os.OpenFile(filepath.Join(busy, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	e.mustBerth("delete", "--force", "kc-1")
	if _, err := os.Stat(mine); err == nil {
		t.Errorf("delete --force kc-1 left %s", mine)
	}
	for _, d := range []string{other, busy} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("delete --force kc-1 removed %s: %v", d, err)
		}
	}
	f.Close()
	os.RemoveAll(other)
	os.RemoveAll(busy)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// pids.max reached in the parent cgroup: create with the Go init fails, berth saying on one
// line (its last) which group's pids.max was reached, and leaves nothing (with the init's C
// stage, which starts no thread, a one-process container fits and runs); exec into a running container
// whose parent is full fails the same way and the container lives on; with room again both
// work. The init's Go runtime, which cannot start its threads, printed a crash report of
// about 110 lines on the container's stderr before berth's line: no longer.
func TestFaultParentPidsMax(t *testing.T) {
	pidsRoot := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(pidsRoot, "pids.current")); err == nil || os.IsNotExist(err) {
		if _, err := os.Stat(pidsRoot); err != nil {
			t.Skip("no cgroup v1 pids hierarchy")
		}
	}
	parent := fmt.Sprintf("berth-pidsmax-%d", os.Getpid())
	pdir := filepath.Join(pidsRoot, parent)
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmdirCgroups(parent+"/pm-1", parent+"/pm-2", parent) })
	setMax := func(v string) {
		if err := os.WriteFile(filepath.Join(pdir, "pids.max"), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(e *env, id string) {
		t.Helper()
		e.assertGone(id)
		for _, h := range cgroupHierarchies() {
			if _, err := os.Stat(filepath.Join(h, parent, id)); err == nil {
				t.Errorf("cgroup %s left", filepath.Join(h, parent, id))
			}
		}
	}
	berthSays := func(what string, r result) {
		t.Helper()
		t.Logf("%s: exit %d: %s", what, r.code, strings.TrimSpace(r.stderr))
		oneLine(t, what, r)
		if l := lastLine(r.stderr); !strings.HasPrefix(l, "berth: ") || !strings.Contains(l, "pids.max") {
			t.Errorf("%s: exit %d, last line %q: want berth's one-line error naming pids.max", what, r.code, l)
		}
	}

	e := newEnv(t, "sleep", "100")
	e.spec.Linux.CgroupsPath = "/" + parent + "/pm-1"
	e.writeSpec()
	setMax("1")
	// The Go init needs threads, which a full parent refuses. The init's C stage needs none:
	// a container of one process fits a limit of one, and runs.
	os.Setenv("BERTH_GO_INIT", "1")
	r := e.berth("create", "--bundle", e.bundle, "pm-1")
	os.Unsetenv("BERTH_GO_INIT")
	berthSays("create under a full parent (Go init)", r)
	gone(e, "pm-1")
	e.mustBerth("create", "--bundle", e.bundle, "pm-1")
	e.mustBerth("start", "pm-1")
	e.waitStatus("pm-1", "running")
	e.mustBerth("delete", "--force", "pm-1")
	gone(e, "pm-1")

	setMax("max")
	e.mustBerth("create", "--bundle", e.bundle, "pm-1")
	e.mustBerth("start", "pm-1")
	cur := strings.TrimSpace(readTrim(t, filepath.Join(pdir, "pids.current")))
	setMax(cur)
	r = e.berth("exec", "pm-1", "true")
	berthSays("exec under a full parent", r)
	if st := e.state("pm-1"); st.Status != "running" {
		t.Errorf("after the failed exec the container is %s", st.Status)
	}
	setMax("max")
	e.mustBerth("exec", "pm-1", "true")
	e.mustBerth("delete", "--force", "pm-1")
	gone(e, "pm-1")
}

// start, delete, exec and kill SIGKILLed at moments spread over their run (an engine's
// timeout): berth's state stays readable (state works or says the container does not exist,
// on one line), `delete --force` then succeeds silently, and nothing is left.
func TestFaultCommandsKilled(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, victim := range []string{"start", "delete", "exec", "kill"} {
		for i := 0; i < 6; i++ {
			id := fmt.Sprintf("kk-%s-%d", victim, i)
			e.mustBerth("create", "--bundle", e.bundle, id)
			if victim != "start" {
				e.mustBerth("start", id)
			}
			args := map[string][]string{
				"start":  {"start", id},
				"delete": {"delete", "--force", id},
				"exec":   {"exec", id, "sh", "-c", "sleep 0.05"},
				"kill":   {"kill", id, "KILL"},
			}[victim]
			cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Spread over 0-24 ms: these commands take a few ms to a few tens of ms here.
			delay := time.Duration(i*4000+rng.Intn(4000)) * time.Microsecond
			time.Sleep(delay)
			cmd.Process.Kill()
			cmd.Wait()
			if r := e.berth("state", id); r.code != 0 {
				oneLine(t, fmt.Sprintf("state after %s killed at %v", victim, delay), r)
				if !strings.Contains(r.stderr, "does not exist") {
					t.Errorf("state of %s after %s killed at %v: %q", id, victim, delay, r.stderr)
				}
			}
			r := e.berth("delete", "--force", id)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("delete --force %s after %s killed at %v: exit %d %q", id, victim, delay, r.code, r.stderr)
			}
			e.assertGone(id)
		}
	}
}

// Two `delete --force` and a `start` racing on one created container: each ends with exit 0
// or a one-line error, and afterwards nothing of the container is left. It found: a delete
// that waited for the lock while the other removed the directory made the lock file again
// (O_CREATE), so the other's rmdir failed ("directory not empty", exit 1) and the directory
// stayed; only create makes the lock file now.
func TestFaultDeleteStartRace(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	// 30 rounds: two racing deletes left the directory about one round in ten.
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("race-%d", i)
		e.mustBerth("create", "--bundle", e.bundle, id)
		cmds := [][]string{{"delete", "--force", id}, {"start", id}, {"delete", "--force", id}}
		results := make([]result, len(cmds))
		var wg sync.WaitGroup
		for k, args := range cmds {
			wg.Add(1)
			go func(k int, args []string) {
				defer wg.Done()
				results[k] = e.berth(args...)
			}(k, args)
		}
		wg.Wait()
		var seen []string
		for k, r := range results {
			seen = append(seen, fmt.Sprintf("%s: %d %s", cmds[k][0], r.code, strings.TrimSpace(r.stderr)))
			if r.code != 0 {
				oneLine(t, strings.Join(cmds[k], " "), r)
			}
		}
		t.Logf("%s: %s", id, strings.Join(seen, "; "))
		if r := e.berth("state", id); r.code == 0 {
			t.Errorf("%s still exists after two delete --force: %s", id, r.stdout)
		}
		e.assertGone(id)
	}
}

// A delete killed while it removed the state directory leaves it without its lock or its
// state: `delete --force` (and `delete`, as runc) then removes it. Found by
// TestFaultCommandsKilled, where the directory of a container whose delete --force had been
// SIGKILLed stayed after a second delete --force that exited 0.
func TestFaultHalfRemovedStateDir(t *testing.T) {
	e := newEnv(t, "true")
	for _, c := range []struct{ id, keep, cmd string }{
		{"hr-1", "state.json", "--force"}, {"hr-2", "lock", "--force"}, {"hr-3", "", ""},
	} {
		d := filepath.Join(e.root, c.id)
		os.MkdirAll(d, 0o711)
		if c.keep != "" {
			os.WriteFile(filepath.Join(d, c.keep), []byte("{}"), 0o600)
		}
		args := []string{"delete", c.id}
		if c.cmd != "" {
			args = []string{"delete", c.cmd, c.id}
		}
		r := e.berth(args...)
		t.Logf("%v on a directory holding only %q: exit %d %s", args, c.keep, r.code, strings.TrimSpace(r.stderr))
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%v left %s", args, d)
		}
	}
}
