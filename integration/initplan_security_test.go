package integration

// The init's C stage (libcontainer/nsenter/plan*.c) must keep every security property of the Go
// init (BERTH_GO_INIT=1): each test runs both.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// forBothInits runs f once with the C stage and once with the Go init; goInit is the
// environment berth is run with.
func forBothInits(t *testing.T, f func(t *testing.T, goInit []string)) {
	t.Run("c", func(t *testing.T) { f(t, os.Environ()) })
	t.Run("go", func(t *testing.T) { f(t, append(os.Environ(), "BERTH_GO_INIT=1")) })
}

// berthWith runs berth with this env's --root, the given environment and credentials.
func (e *env) berthWith(environ []string, cred *syscall.Credential, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	cmd.Env = environ
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return e.berthCmd(cmd)
}

// imageRootfs is a copy of the busybox rootfs the test may plant things in.
func imageRootfs(t *testing.T) string {
	t.Helper()
	rf := t.TempDir()
	if err := copyTree(rootfs, rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// An image whose /proc/self/setgroups says "deny" (the config mounts no /proc, so that file is
// the image's) must not make the user's process keep the supplementary groups of the berth
// that started it (here root's group 0 and 4242).
func TestImageSetgroupsFileIgnored(t *testing.T) {
	forBothInits(t, func(t *testing.T, environ []string) {
		rf := imageRootfs(t)
		os.MkdirAll(filepath.Join(rf, "proc/self"), 0o755)
		if err := os.WriteFile(filepath.Join(rf, "proc/self/setgroups"), []byte("deny\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, "id", "-G")
		e.spec.Root.Path = rf
		var kept = e.spec.Mounts[:0]
		for _, m := range e.spec.Mounts {
			if m.Destination != "/proc" {
				kept = append(kept, m)
			}
		}
		e.spec.Mounts = kept
		e.spec.Linux.MaskedPaths, e.spec.Linux.ReadonlyPaths = nil, nil
		e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
		e.writeSpec()
		r := e.berthWith(environ, &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4242}},
			"run", "--bundle", e.bundle, "setgroups")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "1000" {
			t.Fatalf("want only the user's group 1000, got exit %d: %q %q", r.code, r.stdout, r.stderr)
		}
	})
}
