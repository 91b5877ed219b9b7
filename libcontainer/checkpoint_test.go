//go:build !lean

package libcontainer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/wire"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// criu names a mount by its real path in the container: a destination through a symlink of
// the rootfs is resolved inside it, and a symlink pointing out of it stays inside.
func TestContainerPath(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "real", "conf"), 0o755)
	os.Symlink("/real/conf", filepath.Join(root, "conf"))
	os.Symlink("../../../../etc", filepath.Join(root, "escape"))
	for dest, want := range map[string]string{
		"/conf":       "/real/conf",
		"conf/x":      "/real/conf/x",
		"/data":       "/data",
		"/escape/foo": "/etc/foo",
	} {
		if got := containerPath(root, dest); got != want {
			t.Errorf("containerPath(%q) = %q, want %q", dest, got, want)
		}
	}
}

// Bad flags are refused before criu is asked anything, naming the flag.
func TestCriuOptsValidate(t *testing.T) {
	img := t.TempDir()
	for _, c := range []struct {
		o    CriuOpts
		want string
	}{
		{CriuOpts{ImagePath: img, CgroupsMode: "loose"}, "--manage-cgroups-mode"},
		{CriuOpts{ImagePath: img, EmptyNs: []string{"pid"}}, "--empty-ns"},
		{CriuOpts{ImagePath: img, ParentPath: "/abs"}, "--parent-path"},
		{CriuOpts{ImagePath: img, ParentPath: "../none"}, "invalid --parent-path"},
		{CriuOpts{ImagePath: img, PageServer: "nowhere"}, "--page-server"},
	} {
		err := c.o.validateDump()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.o, err, c.want)
		}
	}
	ok := CriuOpts{ImagePath: img, CgroupsMode: "full", EmptyNs: []string{string(specs.NetworkNamespace)}, PageServer: "10.0.0.1:27"}
	if err := ok.validateDump(); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// --parent-path is checked where criu will look for it: relative to the image directory as
// it really is, when --image-path goes through a symlink (its ".." is the real directory's
// parent), whether the image directory exists yet or not.
func TestParentPathThroughSymlink(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "real", "ckpt"), 0o700)
	os.MkdirAll(filepath.Join(d, "real", "parent"), 0o700) // where criu finds ../parent
	os.MkdirAll(filepath.Join(d, "links", "decoy"), 0o700)
	os.Symlink(filepath.Join(d, "real", "ckpt"), filepath.Join(d, "links", "ckpt"))
	os.Symlink(filepath.Join(d, "real"), filepath.Join(d, "links", "up"))
	for _, img := range []string{filepath.Join(d, "links", "ckpt"), filepath.Join(d, "links", "up", "new")} {
		if err := (&CriuOpts{ImagePath: img, ParentPath: "../parent"}).validateDump(); err != nil {
			t.Errorf("--image-path %s --parent-path ../parent: %v (criu finds %s/real/parent)", img, err, d)
		}
	}
	// Lexically ../decoy exists beside the link; criu would not find it.
	if err := (&CriuOpts{ImagePath: filepath.Join(d, "links", "ckpt"), ParentPath: "../decoy"}).validateDump(); err == nil {
		t.Errorf("--parent-path ../decoy accepted: criu resolves it in %s/real, where there is none", d)
	}
}

// descriptors.json is written in the image directory, never through a symlink planted
// there (a checkpoint into a directory someone else made must not overwrite a host file).
func TestDescriptorsNoFollow(t *testing.T) {
	img := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	os.Symlink(victim, filepath.Join(img, descriptorsFile))
	spec := &specs.Spec{Linux: &specs.Linux{}}
	c := &Container{ID: "x", State: &State{StateFields: wire.StateFields{Pid: os.Getpid(), Rootfs: "/"}, Config: spec}}
	d, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := c.describeOutside(&rpc.CriuOpts{}, d); err == nil {
		t.Errorf("descriptors.json written through a symlink")
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Errorf("the symlink's target was overwritten: %q", data)
	}
	os.Remove(filepath.Join(img, descriptorsFile))
	if err := c.describeOutside(&rpc.CriuOpts{}, d); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(img, descriptorsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("descriptors.json: %v %v, want mode 0600", fi, err)
	}
}

// restore reads descriptors.json only as a regular file of the image directory: a symlink
// there (to a host file, or a FIFO that would block the open) is refused, not followed.
func TestReadDescriptorsNoFollow(t *testing.T) {
	img := t.TempDir()
	d, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if fds, err := readDescriptors(d); fds != nil || err != nil {
		t.Errorf("no descriptors.json: %q %v, want nothing", fds, err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink(fifo, filepath.Join(img, descriptorsFile))
	done := make(chan error, 1)
	go func() { _, err := readDescriptors(d); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("descriptors.json read through a symlink")
		}
	case <-time.After(10 * time.Second): // only a bound on a blocked open: no timing asserted
		t.Fatal("reading descriptors.json opened the FIFO its symlink points to, and blocks")
	}
	os.Remove(filepath.Join(img, descriptorsFile))
	os.WriteFile(filepath.Join(img, descriptorsFile), []byte(`["/dev/null","pipe:[7]","pipe:[8]"]`), 0o600)
	if fds, err := readDescriptors(d); err != nil || len(fds) != 3 || fds[1] != "pipe:[7]" {
		t.Errorf("descriptors.json: %q %v", fds, err)
	}
}

// restore refuses an image directory without a checkpoint in it.
func TestCheckImage(t *testing.T) {
	dir := t.TempDir()
	if err := checkImage(dir); err == nil || !strings.Contains(err.Error(), "holds no checkpoint") {
		t.Errorf("empty directory: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "inventory.img"), nil, 0o600)
	if err := checkImage(dir); err != nil {
		t.Errorf("directory with an inventory: %v", err)
	}
	if err := checkImage(filepath.Join(dir, "none")); err == nil || !strings.HasPrefix(err.Error(), "--image-path: ") {
		t.Errorf("missing directory: %v", err)
	}
}

// Mount points are made where the container will see them: a destination inside an earlier
// bind mount in that bind's source (runc's checkpoint.bats "nested bind mounts" removes them
// from there before the restore), others in the rootfs; none under a tmpfs.
func TestPrepareMountpoints(t *testing.T) {
	root, outer, inner := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	err := prepareMountpoints(root, []specs.Mount{
		{Destination: "/test", Type: "bind", Source: outer, Options: []string{"bind"}},
		{Destination: "/test/for/nested", Type: "bind", Source: inner, Options: []string{"bind"}},
		{Destination: "/test/for/file", Type: "bind", Source: file, Options: []string{"bind"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/run/x", Type: "bind", Source: inner, Options: []string{"bind"}},
		{Destination: "/proc", Type: "proc", Source: "proc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "test"), filepath.Join(outer, "for/nested"), filepath.Join(root, "proc"), filepath.Join(root, "run")} {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Errorf("%s: not a directory (%v)", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(outer, "for/file")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("file mount point in the outer bind's source: %v", err)
	}
	for _, p := range []string{filepath.Join(root, "test/for"), filepath.Join(root, "run/x")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s made, where the container does not see it", p)
		}
	}
}

// Relative bind sources are the bundle's (runc's suite writes ./tmp.XXXX), for criu too.
func TestBundleMounts(t *testing.T) {
	in := []specs.Mount{
		{Destination: "/a", Type: "bind", Source: "./tmp.x"},
		{Destination: "/b", Source: "rel", Options: []string{"rbind"}},
		{Destination: "/c", Type: "bind", Source: "/abs"},
		{Destination: "/proc", Type: "proc", Source: "proc"},
	}
	out := bundleMounts(in, "/bundle")
	want := []string{"/bundle/tmp.x", "/bundle/rel", "/abs", "proc"}
	for i, m := range out {
		if m.Source != want[i] {
			t.Errorf("mount %s: source %q, want %q", m.Destination, m.Source, want[i])
		}
	}
	if in[0].Source != "./tmp.x" {
		t.Error("bundleMounts changed the config's own mounts")
	}
}
