package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// criuWorksHere says whether a criu is installed and passes its own check of this kernel
// (Debian 12's criu 3.17 fails it on 6.18 kernels: "vdso: Unexpected rt vDSO area bounds"),
// and the first error its check logged. The log goes to a file: criu writes its messages to a
// descriptor of its own, which is not always the stderr it was given.
func criuWorksHere(t *testing.T) (installed, works bool, firstError string) {
	p, err := exec.LookPath("criu")
	if err != nil {
		return false, false, ""
	}
	log := filepath.Join(t.TempDir(), "check.log")
	err = exec.Command(p, "check", "-o", log).Run()
	data, _ := os.ReadFile(log)
	return true, err == nil, criuFirstError(string(data))
}

// On a host without a working criu, checkpoint and restore fail before they make anything,
// and say why: criu missing, or criu's own reason for failing its check of the kernel. A
// container that is not running, and an image directory without a checkpoint, are refused
// with their own errors. Nothing is left behind: no image or work directory, no state
// directory or cgroup of the container restore would have made, and the checkpointed
// container still runs.
func TestCheckpointRestoreErrorsWithoutWorkingCriu(t *testing.T) {
	installed, works, first := criuWorksHere(t)
	if works {
		t.Skip("criu works on this host: the VM suite covers a real checkpoint; this test is for the errors")
	}
	e := newEnv(t, "sleep", "1000")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "ck1")
	defer e.berth("delete", "--force", "ck1")
	dir := t.TempDir()
	img, work := filepath.Join(dir, "img"), filepath.Join(dir, "work")

	// Without criu in $PATH (Debian puts it in /usr/sbin).
	noCriu := func(args ...string) result {
		cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
		cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
		return e.berthCmd(cmd)
	}
	r := noCriu("checkpoint", "--image-path", img, "--work-path", work, "ck1")
	if r.code == 0 || !strings.Contains(r.stderr, "needs criu") || !strings.Contains(r.stderr, "criu: executable file not found in $PATH") {
		t.Errorf("checkpoint without criu: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("checkpoint without criu: error is not one line: %q", r.stderr)
	}
	os.MkdirAll(img, 0o700)
	os.WriteFile(filepath.Join(img, "inventory.img"), []byte("not really"), 0o600)
	r = noCriu("restore", "-d", "--image-path", img, "--bundle", e.bundle, "ck2")
	if r.code == 0 || !strings.Contains(r.stderr, "criu: executable file not found in $PATH") {
		t.Errorf("restore without criu: exit %d, stderr %q", r.code, r.stderr)
	}
	e.assertGone("ck2")
	os.RemoveAll(img)

	if installed {
		// criu's own words for its failed check are passed on.
		r = e.berth("checkpoint", "--image-path", img, "--work-path", work, "ck1")
		if r.code == 0 || !strings.Contains(r.stderr, "fails its check of this kernel") || first == "" || !strings.Contains(r.stderr, first) {
			t.Errorf("checkpoint with a failing criu: exit %d, stderr %q (criu check says %q)", r.code, r.stderr, first)
		}
		for _, d := range []string{img, work} {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("failed checkpoint left %s behind", d)
			}
		}
		os.MkdirAll(img, 0o700)
		os.WriteFile(filepath.Join(img, "inventory.img"), []byte("not really"), 0o600)
		r = e.berth("restore", "-d", "--image-path", img, "--bundle", e.bundle, "ck2")
		if r.code == 0 || !strings.Contains(r.stderr, "fails its check of this kernel") || !strings.Contains(r.stderr, first) {
			t.Errorf("restore with a failing criu: exit %d, stderr %q", r.code, r.stderr)
		}
		e.assertGone("ck2")
		os.RemoveAll(img)

		// features and --version say it is not supported, and why.
		var f struct{ Annotations map[string]string }
		if err := json.Unmarshal([]byte(e.mustBerth("features").stdout), &f); err != nil {
			t.Fatal(err)
		}
		if v := f.Annotations["org.opencontainers.runc.checkpoint.enabled"]; v != "false" {
			t.Errorf("features: checkpoint.enabled %q with a failing criu", v)
		}
		if v := e.mustBerth("--version").stdout; !strings.Contains(v, "\ncheckpoint: not supported (") || !strings.Contains(v, first) {
			t.Errorf("--version: %q", v)
		}
	}
	// org.criu.config changes what criu does: features lists it among the unsafe annotations.
	var f struct {
		Unsafe []string `json:"potentiallyUnsafeConfigAnnotations"`
	}
	if err := json.Unmarshal([]byte(e.mustBerth("features").stdout), &f); err != nil || !slices.Contains(f.Unsafe, "org.criu.config") {
		t.Errorf("features: potentiallyUnsafeConfigAnnotations %q (%v), want org.criu.config in it", f.Unsafe, err)
	}
	if e.state("ck1").Status != "running" {
		t.Errorf("the container no longer runs after the failed checkpoints")
	}

	// An image directory that exists but holds no checkpoint.
	empty := t.TempDir()
	r = e.berth("restore", "-d", "--image-path", empty, "--bundle", e.bundle, "ck3")
	if r.code == 0 || !strings.Contains(r.stderr, "--image-path "+empty+": holds no checkpoint") {
		t.Errorf("restore from an empty directory: exit %d, stderr %q", r.code, r.stderr)
	}
	e.assertGone("ck3")

	// Only a running (or paused) container can be checkpointed: runc's words.
	e.mustBerth("create", "--bundle", e.bundle, "ck4")
	r = e.berth("checkpoint", "--image-path", img, "ck4")
	if r.code == 0 || !strings.Contains(r.stderr, "Container cannot be checkpointed in created state") {
		t.Errorf("checkpoint of a created container: exit %d, stderr %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "--force", "ck4")
	if r := e.berth("checkpoint", "--image-path", img, "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("checkpoint of no container: exit %d, stderr %q", r.code, r.stderr)
	}
}

// criuFirstError is the message of the first "Error (file:line): message" line criu printed.
func criuFirstError(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "Error ("); i >= 0 {
			if j := strings.Index(line[i:], "): "); j > 0 {
				return strings.TrimSpace(line[i+j+3:])
			}
		}
	}
	return ""
}

// The container's init, and a process exec'd into it, each lead a session of their own, as
// runc's do (nsexec's stage 2): criu refuses to dump a process whose session leader is outside
// its pid namespace ("A session leader of N(1) is outside of its pid namespace"), which the
// caller's session is.
func TestInitAndExecLeadTheirSession(t *testing.T) {
	// Fields 1 and 6 of /proc/self/stat: pid and session (0 when the leader is outside).
	const sid = `read pid comm state ppid pgrp sid rest < /proc/self/stat; echo "$pid $sid"`
	e := newEnv(t, "sh", "-c", sid)
	if r := e.run("sid1"); r.code != 0 || strings.TrimSpace(r.stdout) != "1 1" {
		t.Errorf("init: pid and session %q (exit %d, %s), want \"1 1\"", r.stdout, r.code, r.stderr)
	}
	e.spec.Process.Args = []string{"sleep", "1000"}
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "sid2")
	defer e.berth("delete", "--force", "sid2")
	f := strings.Fields(e.mustBerth("exec", "sid2", "sh", "-c", sid).stdout)
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("exec: pid and session %q, want the same number", f)
	}
}

// A restore with the id of an existing container fails with runc's words, before criu is
// asked for anything (so the same answer with criu missing, failing or working), and leaves
// the existing container as it was: running, or paused in a cgroup the restore's config
// names too (where the cgroup's check came first and said "unexpectedly frozen").
func TestRestoreTakenID(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.spec.Linux.CgroupsPath = "/berth-restore-taken"
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "taken")
	defer e.berth("delete", "--force", "taken")
	before := e.state("taken")
	img := t.TempDir()
	os.WriteFile(filepath.Join(img, "inventory.img"), []byte("not really"), 0o600)
	os.WriteFile(filepath.Join(img, "descriptors.json"), []byte(`["pipe:[1]","pipe:[2]","pipe:[3]"]`), 0o600)
	for _, paused := range []bool{false, true} {
		if paused {
			e.mustBerth("pause", "taken")
		}
		for _, path := range []string{"", "/usr/bin:/bin"} { // criu as installed, and none
			cmd := exec.Command(berthBin, "--root", e.root, "restore", "-d", "--image-path", img, "--bundle", e.bundle, "taken")
			if path != "" {
				cmd.Env = append(os.Environ(), "PATH="+path)
			}
			r := e.berthCmd(cmd)
			if r.code != 1 || !strings.HasSuffix(strings.TrimSpace(r.stderr), "container with given ID already exists") {
				t.Errorf("restore of a taken id (paused %v, PATH %q): exit %d, stderr %q", paused, path, r.code, r.stderr)
			}
		}
		after := e.state("taken")
		want := "running"
		if paused {
			want = "paused"
		}
		if after.Status != want || after.Pid != before.Pid {
			t.Errorf("the existing container after the refused restore: %s pid %d, want %s pid %d", after.Status, after.Pid, want, before.Pid)
		}
	}
	e.mustBerth("resume", "taken")
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", before.Pid))
	if err != nil || !strings.Contains(string(data), "/berth-restore-taken") {
		t.Errorf("the existing container's init left its cgroup: %q (%v)", data, err)
	}
}

// A restore killed while criu works (a caller's timeout: go-runc kills the runtime with its
// context) leaves the new container's rootfs bound at <state dir>/criu-root. The delete
// --force that cleans up after it must undo that bind before it removes the state directory:
// removing it through the bind deleted the rootfs's files (and those of any mount under it).
func TestDeleteAfterKilledRestore(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "killedrestore")
	// What the killed restore left: its bind of the rootfs (here a stand-in with a file).
	fake := t.TempDir()
	os.WriteFile(filepath.Join(fake, "precious"), []byte("x"), 0o644)
	mnt := filepath.Join(e.root, "killedrestore", "criu-root")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--rbind", fake, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	r := e.berth("delete", "--force", "killedrestore")
	if _, err := os.Stat(filepath.Join(fake, "precious")); err != nil {
		t.Errorf("delete --force removed the files of the rootfs bound at criu-root: %v", err)
	}
	if r.code != 0 {
		t.Fatalf("delete --force: exit %d: %s", r.code, r.stderr)
	}
	e.assertGone("killedrestore")
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), mnt) {
		t.Errorf("criu-root is still mounted after delete --force")
	}
}
