package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A read-only tmpfs (a "ro" /dev, as runc's issue 3248) with mounts below it: the mount points
// and device nodes are made before it becomes read-only, as with runc, and it is read-only
// inside the container.
func TestReadonlyTmpfsWithMountsBelow(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("bound\n"), 0o644)
	e := newEnv(t)
	e.spec = runcSpec(t, "sh", "-c", `grep -E '^tmpfs /(dev|data) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1
ls /dev/pts/ptmx /dev/null; cat /data/sub/f
touch /dev/x 2>/dev/null && echo WROTE-DEV; touch /data/x 2>/dev/null && echo WROTE-DATA; true`)
	for i, m := range e.spec.Mounts {
		if m.Destination == "/dev" {
			e.spec.Mounts[i].Options = append(m.Options, "ro")
		}
	}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nosuid"}},
		specs.Mount{Destination: "/data/sub", Type: "bind", Source: src, Options: []string{"bind", "ro"}})
	r := e.run("ro-dev")
	want := "/dev ro\n/data ro\n/dev/null\n/dev/pts/ptmx\nbound\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, out %q, want %q; err %q", r.code, r.stdout, want, r.stderr)
	}
	if strings.Contains(r.stdout, "WROTE") {
		t.Errorf("a read-only tmpfs was written to")
	}
}

// A mount destination reached through a symlink whose target does not exist yet is made where
// the link points, resolved inside the rootfs as runc does: an absolute target is taken from
// the rootfs, and ".." stops at it. Nothing appears on the host.
func TestMountThroughDanglingSymlink(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "rootfs")
	os.MkdirAll(filepath.Dir(root), 0o755)
	if out, err := exec.Command("cp", "-a", rootfs, root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	tag := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(root)))))
	abs, up, file := "berth-abs-"+tag, "berth-up-"+tag, "berth-file-"+tag
	links := map[string]string{
		"conf":    "/" + abs + "/conf",                 // absolute, dangling
		"up":      "../../../../../" + up,              // above the rootfs, dangling
		"etc/cfg": "../../../" + file + "/dir/cfg.txt", // a file bind's destination
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(t.TempDir(), "cfg.txt")
	os.WriteFile(src, []byte("cfg\n"), 0o644)
	e := newEnv(t, "sh", "-c", "grep -E ' /(conf|up|etc/cfg|"+abs+"|"+up+"|"+file+")' /proc/self/mountinfo | cut -d' ' -f5; cat /etc/cfg")
	e.spec.Root.Path = root
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/conf/stack", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nodev", "nosuid"}},
		specs.Mount{Destination: "/up", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/etc/cfg", Type: "bind", Source: src, Options: []string{"bind", "ro"}})
	r := e.run("dangling")
	want := "/" + abs + "/conf/stack\n/" + up + "\n/" + file + "/dir/cfg.txt\ncfg\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, out %q, want %q; err %q", r.code, r.stdout, want, r.stderr)
	}
	for _, p := range []string{abs + "/conf/stack", up, file + "/dir/cfg.txt"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s not made inside the rootfs: %v", p, err)
		}
	}
	for dir := root; dir != "/"; dir = filepath.Dir(dir) {
		for _, n := range []string{abs, up, file} {
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), n)); err == nil {
				t.Errorf("made on the host: %s", filepath.Join(filepath.Dir(dir), n))
				os.RemoveAll(filepath.Join(filepath.Dir(dir), n))
			}
		}
	}
}

// Kubernetes' Bidirectional mount propagation, as containerd's CRI writes it: the mount has
// "rbind","rshared" and linux.rootfsPropagation is "rshared", which makes every mount of the
// container's namespace shared, the rootfs's own mount point (containerd's overlay) included.
// pivot_root refuses a new root whose parent mount is shared (invalid argument): that mount is
// made private first, as runc does, and a mount made inside under the volume reaches the host.
func TestRsharedMountWithRootfsMountPoint(t *testing.T) {
	mp := t.TempDir()
	if out, err := exec.Command("mount", "--bind", rootfs, mp).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mp).Run() })
	vol := t.TempDir()
	if out, err := exec.Command("sh", "-c", "mount -t tmpfs vol "+vol+" && mount --make-shared "+vol+" && mkdir "+vol+"/in").CombinedOutput(); err != nil {
		t.Fatalf("volume: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-R", "-l", vol).Run() })
	e := newEnv(t)
	e.spec = runcSpec(t, "sh", "-c", "mount -t tmpfs from-container /data/in && grep -c ' /data .*shared:' /proc/self/mountinfo")
	e.spec.Root.Path = mp
	e.spec.Linux.RootfsPropagation = "rshared"
	caps := append(e.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	e.spec.Process.Capabilities.Bounding, e.spec.Process.Capabilities.Effective, e.spec.Process.Capabilities.Permitted = caps, caps, caps
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "rshared", "rw"}})
	r := e.run("rshared")
	if r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	info, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(info), " "+vol+"/in ") {
		t.Errorf("the container's mount under the rshared volume did not reach the host")
	}
}
