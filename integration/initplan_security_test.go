package integration

// The init's C stage (libcontainer/nsenter/plan*.c) must keep every security property of the Go
// init (BERTH_GO_INIT=1): each test runs both.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// initMode is how berth is run: with the C stage (checked to be the one that builds the
// container) or with BERTH_GO_INIT=1.
type initMode struct {
	environ []string
	cStage  bool
}

// forBothInits runs f once with the C stage and once with the Go init.
func forBothInits(t *testing.T, f func(t *testing.T, m initMode)) {
	t.Run("c", func(t *testing.T) { f(t, initMode{os.Environ(), true}) })
	t.Run("go", func(t *testing.T) { f(t, initMode{append(os.Environ(), "BERTH_GO_INIT=1"), false}) })
}

// planEnv is newEnv with a config the C stage builds on this host too: no cgroup namespace
// (a v1 cgroup mount in one is left to the Go init).
func planEnv(t *testing.T, args ...string) *env {
	e := newEnv(t, args...)
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != specs.CgroupNamespace {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = ns
	return e
}

// berthAs runs berth with this env's --root as m says, with the given credentials (or
// berth's). A create or run of the C mode is checked to have used the C stage.
func (e *env) berthAs(m initMode, cred *syscall.Credential, args ...string) result {
	e.t.Helper()
	check := m.cStage && (args[0] == "create" || args[0] == "run")
	if check {
		args = append([]string{"--debug"}, args...)
	}
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	cmd.Env = m.environ
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	r := e.berthCmd(cmd)
	if check {
		if !strings.Contains(r.stderr, "builds the container in its C stage") {
			e.t.Errorf("the C stage did not build the container:\n%s", r.stderr)
		}
		var kept []string // the debug log goes; berth's own messages stay
		for _, l := range strings.SplitAfter(r.stderr, "\n") {
			if !strings.Contains(l, "level=debug") {
				kept = append(kept, l)
			}
		}
		r.stderr = strings.Join(kept, "")
	}
	return r
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
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		os.MkdirAll(filepath.Join(rf, "proc/self"), 0o755)
		if err := os.WriteFile(filepath.Join(rf, "proc/self/setgroups"), []byte("deny\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := planEnv(t, "id", "-G")
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
		r := e.berthAs(m, &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4242}},
			"run", "--bundle", e.bundle, "setgroups")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "1000" {
			t.Fatalf("want only the user's group 1000, got exit %d: %q %q", r.code, r.stdout, r.stderr)
		}
	})
}

// The init waiting for `start` stays non-dumpable once it is the user (a uid change resets
// dumpability to fs.suid_dumpable): otherwise, on a host with fs.suid_dumpable=1, a process of
// the container with the same uid could ptrace it and open its descriptors. /proc/PID/fd of a
// non-dumpable process belongs to root. (The test sets fs.suid_dumpable=1 for the create.)
func TestWaitingInitNotDumpableAsUser(t *testing.T) {
	const knob = "/proc/sys/fs/suid_dumpable"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skip(err)
	}
	forBothInits(t, func(t *testing.T, m initMode) {
		e := planEnv(t, "sleep", "1000")
		e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
		e.writeSpec()
		restore := func() { os.WriteFile(knob, old, 0o644) }
		t.Cleanup(restore) // also if berthAs fails the test
		if err := os.WriteFile(knob, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.berthAs(m, nil, "create", "--bundle", e.bundle, "dumpable")
		restore()
		if r.code != 0 {
			t.Fatalf("create: exit %d: %s", r.code, r.stderr)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/fd", e.state("dumpable").Pid), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 {
			t.Errorf("the waiting init is dumpable (its /proc/PID/fd belongs to uid %d)", st.Uid)
		}
		e.mustBerth("delete", "--force", "dumpable")
	})
}

// A file bind mount's destination that the image points through a magic link at a device node
// (or a fifo) of its own: the destination is created if missing, never opened, so the init
// (root, with the device cgroup not yet applied) does not open the image's device on the host
// (a watchdog, say) nor block for ever on its fifo. Major 240 has no driver here: opening the
// node fails, which the old code did.
func TestBindDestinationDeviceNotOpened(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		if err := syscall.Mknod(filepath.Join(rf, "devnode"), syscall.S_IFCHR|0o644, 240<<8); err != nil {
			t.Fatal(err)
		}
		os.Symlink("/proc/self/root/devnode", filepath.Join(rf, "etc/resolv.conf"))
		src := filepath.Join(t.TempDir(), "resolv.conf")
		os.WriteFile(src, []byte("nameserver 192.0.2.1\n"), 0o644)
		e := planEnv(t, "cat", "/devnode")
		e.spec.Root.Path = rf
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: src, Options: []string{"bind"}})
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "devnode")
		if r.code != 0 || !strings.Contains(r.stdout, "192.0.2.1") {
			t.Fatalf("want the file bound over the image's node: exit %d, %q %q", r.code, r.stdout, r.stderr)
		}
	})
}

// opened reports whether path was opened since the call (inotify IN_OPEN; an O_PATH open or
// a stat does not count).
func opened(t *testing.T, path string) func() bool {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	return func() bool {
		buf := make([]byte, 4096)
		n, _ := unix.Read(fd, buf)
		return n > 0
	}
}

// The image's /etc/passwd (read for HOME) and, with no /dev mounted, its /dev/null (stdio that
// is the host's null device is replaced by it) are opened by the init as root before the
// device cgroup applies: a device node there must be checked before it is opened, never
// opened (here harmless ones; a watchdog arms on open, and the C stage read a /etc/passwd
// that is /dev/zero for ever).
func TestImageDeviceNodesNotOpened(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		// /etc/passwd a null device (read to its end at once), /dev/null a zero device.
		for p, minor := range map[string]int{"etc/passwd": 3, "dev/null": 5} {
			os.Remove(filepath.Join(rf, p))
			if err := syscall.Mknod(filepath.Join(rf, p), syscall.S_IFCHR|0o666, 1<<8|minor); err != nil {
				t.Fatal(err)
			}
		}
		passwd, null := opened(t, filepath.Join(rf, "etc/passwd")), opened(t, filepath.Join(rf, "dev/null"))
		e := planEnv(t, "true")
		e.spec.Root.Path = rf
		e.spec.Process.Env = []string{"PATH=/bin"} // no HOME: it is looked up
		e.spec.Linux.MaskedPaths = nil             // (masking checks /dev/null first, by O_PATH)
		var kept []specs.Mount
		for _, mnt := range e.spec.Mounts {
			if !strings.HasPrefix(mnt.Destination, "/dev") {
				kept = append(kept, mnt)
			}
		}
		e.spec.Mounts = kept
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "devnodes") // stdin: the host's /dev/null
		if !strings.Contains(r.stderr, "not the null device") {
			t.Errorf("want the image's /dev/null refused: exit %d, %q", r.code, r.stderr)
		}
		if null() {
			t.Errorf("the image's /dev/null (a zero device) was opened")
		}
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"})
		e.writeSpec()
		if r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "devnodes2"); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if passwd() {
			t.Errorf("the image's /etc/passwd (a null device) was opened")
		}
	})
}

// Texts of the config go into the init's JSON messages escaped and whole: a destination of
// quotes (escaped, longer than a path) and a control character still give berth the error,
// the same as the Go init's.
func TestLongEscapedPathInError(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		e := planEnv(t, "true")
		dest := "/" + strings.Repeat(`"`, 2100) + "\n\\"
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: "/nonexistent", Options: []string{"bind"}})
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "longpath")
		want := fmt.Sprintf("mounts[%d] (%s): source: stat /nonexistent: no such file or directory", len(e.spec.Mounts)-1, strings.ReplaceAll(dest, "\n", "; ")) // berth's one-line errors
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, want the error naming the mount, got ...%q", r.code, r.stderr[max(0, len(r.stderr)-120):])
		}
		e.assertGone("longpath")
	})
}

// A process of the container with CAP_SYS_PTRACE may read the waiting init's memory: the C
// stage wipes its plan (the host's paths: rootfs, bind sources, cgroups) before it waits, as
// the Go init's berth-wait, a new executable, holds none of it.
func TestWaitingInitMemoryHoldsNoPlan(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		e := planEnv(t, "sleep", "1000")
		e.writeSpec()
		if r := e.berthAs(m, nil, "create", "--bundle", e.bundle, "memwipe"); r.code != 0 {
			t.Fatalf("create: exit %d: %s", r.code, r.stderr)
		}
		script := `while read range perm rest; do case $perm in rw*) ;; *) continue;; esac; ` +
			`s=$((0x${range%-*})); e=$((0x${range#*-})); ` +
			`dd if=/proc/1/mem bs=4096 skip=$((s/4096)) count=$(((e-s)/4096)) 2>/dev/null; done </proc/1/maps | ` +
			`strings | awk -v m='` + rootfs + `' 'index($0, m) { h++ } END { print NR, h+0 }'`
		r := e.mustBerth("exec", "--cap", "CAP_SYS_PTRACE", "memwipe", "sh", "-c", script)
		var read, hits int
		if _, err := fmt.Sscan(r.stdout, &read, &hits); err != nil || read == 0 {
			t.Fatalf("could not read the init's memory: %q %q", r.stdout, r.stderr)
		}
		if hits > 0 {
			t.Errorf("the waiting init's memory holds the host's rootfs path %s (%d times)", rootfs, hits)
		}
		e.mustBerth("start", "memwipe")
		e.mustBerth("delete", "--force", "memwipe")
	})
}

// A NUL byte in a text of the config: the C stage, which reads C strings, would cut it short
// (run with env "A=b", make "/etc" read-only for "/etc\x00..."), where the Go init refuses
// it. Such a config is left to the Go init.
func TestNULInConfigRefused(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		m.cStage = false // the Go init builds it either way
		e := planEnv(t, "sh", "-c", "echo A=$A")
		e.spec.Process.Env = append(e.spec.Process.Env, "A=b\x00c")
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "nul")
		if r.code == 0 || !strings.Contains(r.stderr, "invalid argument") {
			t.Errorf("an env with a NUL byte: exit %d, %q %q", r.code, r.stdout, r.stderr)
		}
	})
}

// linux.sysctl with no procfs on /proc: the value must not land in the image's own
// /proc/sys file (nor open a node of the image there); create fails instead.
func TestSysctlNeedsProcfs(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		file := filepath.Join(rf, "proc/sys/kernel/domainname")
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, []byte("image\n"), 0o644)
		e := planEnv(t, "true")
		e.spec.Root.Path = rf
		var kept []specs.Mount
		for _, mnt := range e.spec.Mounts {
			if mnt.Destination != "/proc" {
				kept = append(kept, mnt)
			}
		}
		e.spec.Mounts = kept
		e.spec.Linux.MaskedPaths, e.spec.Linux.ReadonlyPaths = nil, nil
		e.spec.Linux.Sysctl = map[string]string{"kernel.domainname": "written"}
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "sysctl")
		if data, _ := os.ReadFile(file); string(data) != "image\n" {
			t.Errorf("the sysctl was written into the image's file: %q", data)
		}
		if r.code == 0 || !strings.Contains(r.stderr, "not a procfs") {
			t.Errorf("want create refused: exit %d, %q", r.code, r.stderr)
		}
	})
}

// A destination whose components overflowed the C stage's cleaning buffer lost them, and the
// ".." after them climbed further than meant: this one is /b15 (600 down, 599 up), and the
// tmpfs landed on the container's root instead.
func TestLongDestinationCleanedWhole(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		b := strings.Repeat("b", 15)
		e := planEnv(t, "sh", "-c", "grep -c ' /"+b+" ' /proc/self/mountinfo")
		dest := "/" + strings.Repeat(b+"/", 600) + strings.Repeat("../", 599)
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs"})
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "longdest")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "1" {
			t.Fatalf("want the tmpfs on /%s: exit %d, %q %q", b, r.code, r.stdout, r.stderr)
		}
	})
}

// A file bind's missing destination (under a missing directory) whose name is longer than
// NAME_MAX: refused, as by the Go init, never created under a name cut to 255 bytes.
func TestLongDestinationNameRefused(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		src := filepath.Join(t.TempDir(), "file")
		os.WriteFile(src, []byte("x\n"), 0o644)
		e := planEnv(t, "true")
		e.spec.Root.Path = rf
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp/new/" + strings.Repeat("c", 300), Type: "bind", Source: src, Options: []string{"bind"}})
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "longname")
		if ents, _ := os.ReadDir(filepath.Join(rf, "tmp/new")); r.code == 0 || len(ents) != 0 {
			t.Fatalf("want a refusal and nothing made: exit %d, %d made, %q", r.code, len(ents), r.stderr)
		}
	})
}

// Symlinks of the image on the way to every kind of thing the init makes (a tmpfs, a
// directory and a file bind, a device node, process.cwd, a /proc mount over a symlink):
// absolute, climbing with "..", through /proc/self/root and /proc/1/root (magic links once
// /proc is mounted), dangling. Nothing lands in the host directory they name.
func TestImageSymlinksStayInRootfs(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		host := t.TempDir() // must stay empty
		src := filepath.Join(t.TempDir(), "file")
		os.WriteFile(src, []byte("x\n"), 0o644)
		rf := imageRootfs(t)
		links := map[string]string{"abs": host, "rel": "../../../../../../.." + host,
			"pself": "/proc/self/root" + host, "p1": "/proc/1/root" + host,
			"dots": "/proc/self/root/../../../.." + host, "dang": host + "/missing"}
		e := planEnv(t, "true")
		e.spec.Root.Path = rf
		for l, target := range links {
			os.Symlink(target, filepath.Join(rf, l))
			e.spec.Mounts = append(e.spec.Mounts,
				specs.Mount{Destination: "/" + l + "/tmpfs", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/" + l + "/dir", Type: "bind", Source: filepath.Dir(src), Options: []string{"bind"}},
				specs.Mount{Destination: "/" + l + "/file", Type: "bind", Source: src, Options: []string{"bind"}})
			e.spec.Linux.Devices = append(e.spec.Linux.Devices, specs.LinuxDevice{Path: "/" + l + "/null", Type: "c", Major: 1, Minor: 3})
		}
		e.spec.Process.Cwd = "/dang/cwd"
		e.writeSpec()
		if r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "links"); r.code != 0 {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
		if ents, _ := os.ReadDir(host); len(ents) != 0 {
			t.Fatalf("the init made something in the host directory: %v", ents)
		}
		if _, err := os.Stat(filepath.Join(rf, host, "missing/cwd")); err != nil {
			t.Errorf("the dangling link's target was not made inside the rootfs: %v", err)
		}
	})
}

// CVE-2019-19921 and CVE-2025-31133 with the C stage as with the Go init: a /proc that is a
// symlink in the image is not mounted through, and with no /dev mounted, an image /dev/null
// that is a symlink to a file is not bound over the masked paths.
func TestSymlinkedProcAndDevNullRefused(t *testing.T) {
	forBothInits(t, func(t *testing.T, m initMode) {
		rf := imageRootfs(t)
		os.RemoveAll(filepath.Join(rf, "proc"))
		os.Mkdir(filepath.Join(rf, "elsewhere"), 0o755)
		os.Symlink("/elsewhere", filepath.Join(rf, "proc"))
		e := planEnv(t, "true")
		e.spec.Root.Path = rf
		e.writeSpec()
		r := e.berthAs(m, nil, "run", "--bundle", e.bundle, "symproc")
		if ents, _ := os.ReadDir(filepath.Join(rf, "elsewhere")); r.code == 0 || !strings.Contains(r.stderr, "symlink") || len(ents) != 0 {
			t.Errorf("/proc a symlink: exit %d, %q, %d entries mounted through", r.code, r.stderr, len(ents))
		}
		os.Remove(filepath.Join(rf, "proc"))
		os.Mkdir(filepath.Join(rf, "proc"), 0o755)
		os.Symlink("/etc/passwd", filepath.Join(rf, "dev/null"))
		var kept []specs.Mount
		for _, mnt := range e.spec.Mounts {
			if !strings.HasPrefix(mnt.Destination, "/dev") {
				kept = append(kept, mnt)
			}
		}
		e.spec.Mounts = kept
		e.writeSpec()
		r = e.berthAs(m, nil, "run", "--bundle", e.bundle, "symnull")
		if r.code == 0 || !strings.Contains(r.stderr, "not the null device") {
			t.Errorf("/dev/null a symlink: exit %d, %q", r.code, r.stderr)
		}
	})
}
