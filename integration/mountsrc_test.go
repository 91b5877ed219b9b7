package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A user-namespaced container's bind sources are opened from the host's side (runc does so
// before joining the user namespace): a source under a root-owned directory of mode 000, which
// the container's mapped root may not enter, still mounts, plain or idmapped, and through a
// symlink on the host's side too; an exec into the container sees the mounts.
func TestBindSourceUnreachableFromUserNamespace(t *testing.T) {
	host := t.TempDir()
	os.Chmod(host, 0o755)
	os.Chmod(filepath.Dir(host), 0o755)
	for _, n := range []string{"one", "two", "three"} {
		dir := filepath.Join(host, "closed-"+n, "dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "foo.txt"), []byte(n+"\n"), 0o644)
		os.Chmod(filepath.Dir(dir), 0o000)
	}
	t.Cleanup(func() {
		for _, n := range []string{"one", "two", "three"} {
			os.Chmod(filepath.Join(host, "closed-"+n), 0o700)
		}
	})
	// A symlink the mapped root could read, to a directory it may not reach.
	if err := os.Symlink(filepath.Join(host, "closed-three", "dir"), filepath.Join(host, "link")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"mnt/one", "mnt/two", "mnt/three"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	e := newEnv(t, "sh", "-c", "cat /mnt/one/foo.txt /mnt/two/foo.txt /mnt/three/foo.txt; stat -c %u /mnt/three/foo.txt")
	withUserNS(e.spec)
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/mnt/one", Type: "bind", Source: filepath.Join(host, "closed-one", "dir"), Options: []string{"bind"}},
		specs.Mount{Destination: "/mnt/two", Source: filepath.Join(host, "closed-two", "dir"), Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/mnt/three", Type: "bind", Source: filepath.Join(host, "link"), Options: []string{"bind", "idmap"},
			UIDMappings: e.spec.Linux.UIDMappings, GIDMappings: e.spec.Linux.GIDMappings})
	r := e.run("closed-src")
	if r.code != 0 || r.stdout != "one\ntwo\nthree\n0\n" {
		t.Fatalf("run: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	// The same through exec into a detached container.
	e.spec.Process.Args = []string{"sleep", "100"}
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "closed-src-2")
	if r := e.mustBerth("exec", "closed-src-2", "cat", "/mnt/one/foo.txt", "/mnt/two/foo.txt"); r.stdout != "one\ntwo\n" {
		t.Errorf("exec: %q", r.stdout)
	}
	// The read-only bind is read-only.
	if r := e.berth("exec", "closed-src-2", "touch", "/mnt/two/new"); r.code == 0 {
		t.Errorf("a read-only bind source was written to")
	}
	if _, err := os.Stat(filepath.Join(host, "closed-two", "dir", "new")); err == nil {
		t.Errorf("the host's directory got a file")
	}
	e.mustBerth("delete", "--force", "closed-src-2")
	// A source that does not exist is still reported by its path.
	e.spec.Mounts[len(e.spec.Mounts)-1].Source = filepath.Join(host, "missing")
	e.spec.Mounts[len(e.spec.Mounts)-1].UIDMappings, e.spec.Mounts[len(e.spec.Mounts)-1].GIDMappings = nil, nil
	e.spec.Mounts[len(e.spec.Mounts)-1].Options = []string{"bind"}
	if r := e.run("closed-src-3"); r.code == 0 || !strings.Contains(r.stderr, "missing") {
		t.Errorf("missing source: exit %d, %q", r.code, r.stderr)
	}
	e.assertGone("closed-src-3")
}
