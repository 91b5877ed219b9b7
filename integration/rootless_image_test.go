package integration

// An ordinary user's images (docs/rootless-images.md): berth run --image as a user made here
// (useradd, a subordinate range), run through setpriv with no capability. The layers are
// applied, and the container made, in a user namespace mapped from the user's range.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rlImageUser is a test user: made if missing (a system user: useradd gives it no range),
// with the ranges asked for appended to /etc/subuid and /etc/subgid if it has none.
type rlImageUser struct {
	name             string
	uid, gid         int
	subuid, subgid   int // 0: none
	home, xdg, store string
	path             string // PATH for berth (newuidmap is looked up there)
}

func rlImageEnsureUser(t *testing.T, name string, subuid, subgid bool) *rlImageUser {
	t.Helper()
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Fatalf("newuidmap is needed (Debian package uidmap, in .ci/deps): %v", err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "-r", "-M", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	ru := &rlImageUser{name: name, path: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	ru.uid, _ = strconv.Atoi(u.Uid)
	ru.gid, _ = strconv.Atoi(u.Gid)
	if subuid {
		ru.subuid = ensureSubRange(t, "/etc/subuid", name)
	}
	if subgid {
		ru.subgid = ensureSubRange(t, "/etc/subgid", name)
	}
	// A home of its own for this test (HOME and XDG_RUNTIME_DIR point into it).
	dir, err := os.MkdirTemp("", "berth-rlimage-")
	if err != nil {
		t.Fatal(err)
	}
	ru.home, ru.xdg = filepath.Join(dir, "home"), filepath.Join(dir, "run")
	ru.store = filepath.Join(ru.home, ".local/share/berth/images")
	for _, d := range []string{ru.home, ru.xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, ru.uid, ru.gid); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() {
		if out, err := ru.cmd("list", "-q").Output(); err == nil {
			for _, id := range strings.Fields(string(out)) {
				_ = ru.cmd("delete", "--force", id).Run()
			}
		}
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	return ru
}

// cmd is berth as the user: setpriv (its ids and groups, no capability) with only PATH,
// HOME and XDG_RUNTIME_DIR set.
func (u *rlImageUser) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--reuid", strconv.Itoa(u.uid), "--regid", strconv.Itoa(u.gid), "--init-groups",
		"env", "-i", "PATH=" + u.path, "HOME=" + u.home,
		"XDG_RUNTIME_DIR=" + u.xdg, berthBin}, args...)
	c := exec.Command("setpriv", full...)
	c.Dir = u.home
	return c
}

func (u *rlImageUser) berth(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := u.cmd(args...)
	c = exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	c.Dir = u.home
	// Files, not pipes: a detached container keeps its stdio open after berth exits.
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	c.Stdout, c.Stderr = out, errf
	err = c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return result{stdout: string(o), stderr: string(e), code: code}
}

// rlImageLayout copies the test images where the user can read them.
func rlImageLayout(t *testing.T, u *rlImageUser) string {
	t.Helper()
	src := filepath.Join(testImages(t), "img")
	dst := filepath.Join(filepath.Dir(u.home), "img")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", dst).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
	return dst
}

// TestRootlessImageRun: an ordinary user runs a layered image (whiteouts, an opaque
// directory, files of uid 1000, a setuid file): the tree inside is the image's, owners as in
// the image; on the host the layer's files belong to the user's subordinate ids, no setuid
// file is root's, whiteouts and opaque marks are in the form overlayfs reads in a user
// namespace; the container then runs detached, exec and delete work from outside, and
// nothing stays mounted or stored for it.
func TestRootlessImageRun(t *testing.T) {
	u := rlImageEnsureUser(t, "berth-rlimage", true, true)
	app := rlImageLayout(t, u) + ":app"

	// The image's own command and its exit status, through the berth run in the namespace.
	if r := u.berth(t, "run", "--image", app, "rl-cmd"); r.code != 3 || r.stdout != "app\n" {
		t.Errorf("run --image with the image's command: want exit 3 and \"app\", got %+v", r)
	}
	check := "stat -c '%u:%g %a %n' /data/file /data/suid /data/sub; id -u; " +
		"test -e /data/gone || echo gone; ls /data/opq; cat /data/file; " +
		"cat /proc/self/uid_map | tr -s ' ' | tr '\\n' ';'; echo; touch /data/sub/new && echo writable"
	r := u.berth(t, "run", "--image", app, "rl-run", check)
	want := fmt.Sprintf("1000:1001 640 /data/file\n1000:1000 4755 /data/suid\n1000:1000 2750 /data/sub\n1000\ngone\nnew\nhello\n 0 %d 1; 1 %d 65536;\nwritable\n", u.uid, u.subuid)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("run --image as %s: exit %d\nstdout %q\nwant   %q\nstderr %s", u.name, r.code, r.stdout, want, r.stderr)
	}

	// The store, on the host.
	ents, err := os.ReadDir(filepath.Join(u.store, "layers"))
	if err != nil || len(ents) < 2 {
		t.Fatalf("the user's store %s: %v %v", u.store, ents, err)
	}
	sawFile, sawWhiteout, sawOpaque := false, false, false
	for _, e := range ents {
		l := filepath.Join(u.store, "layers", e.Name())
		filepath.Walk(l, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			rel := strings.TrimPrefix(p, l)
			if fi.Mode()&os.ModeSetuid != 0 && st.Uid == 0 {
				t.Errorf("%s: a setuid file of a layer is root's on the host", p)
			}
			if st.Uid == 0 || st.Gid == 0 {
				t.Errorf("%s: owned by %d:%d on the host (root)", p, st.Uid, st.Gid)
			}
			switch rel {
			case "/data/file":
				sawFile = true
				if int(st.Uid) != u.subuid+999 || int(st.Gid) != u.subgid+1000 {
					t.Errorf("%s: owner %d:%d on the host, want %d:%d (uid 1000:1001 of the image)", p, st.Uid, st.Gid, u.subuid+999, u.subgid+1000)
				}
			case "/data/gone":
				sawWhiteout = sawWhiteout || st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
			case "/data/opq":
				buf := make([]byte, 8)
				n, err := unix.Lgetxattr(p, "user.overlay.opaque", buf)
				sawOpaque = sawOpaque || err == nil && string(buf[:n]) == "y"
				if _, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf); err == nil {
					t.Errorf("%s: trusted.overlay.opaque in an ordinary user's store", p)
				}
			}
			return nil
		})
	}
	if !sawFile || !sawWhiteout || !sawOpaque {
		t.Errorf("layers: data/file found %v, data/gone a 0/0 whiteout %v, data/opq user.overlay.opaque=y %v", sawFile, sawWhiteout, sawOpaque)
	}
	rlImageNothingLeft(t, u, "rl-run")

	// Detached, then exec and delete from outside the namespace it was made in.
	if r := u.berth(t, "run", "-d", "--image", app, "rl-det", "echo kept > /data/sub/w; exec sleep 1000"); r.code != 0 {
		t.Fatalf("run -d --image: %+v", r)
	}
	var r2 result
	for i := 0; i < 100; i++ {
		if r2 = u.berth(t, "exec", "--user", "1000:1000", "rl-det", "cat", "/data/sub/w"); r2.code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r2.code != 0 || r2.stdout != "kept\n" {
		t.Errorf("exec into the detached container: %+v", r2)
	}
	// No descriptor of berth's reached the container's process (its stdio only).
	if r := u.berth(t, "exec", "--user", "1000:1000", "rl-det", "ls", "/proc/1/fd"); r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "0 1 2" {
		t.Errorf("descriptors of the container's process: %+v, want 0 1 2", r)
	}
	if r := u.berth(t, "delete", "--force", "rl-det"); r.code != 0 {
		t.Errorf("delete --force: %+v", r)
	}
	rlImageNothingLeft(t, u, "rl-det")

	// create, then start, kill --all and delete, each a berth of its own outside the namespace.
	if r := u.berth(t, "create", "--image", app, "rl-cs", "echo started > /data/sub/s; exec sleep 1000"); r.code != 0 {
		t.Fatalf("create --image: %+v", r)
	}
	if st := rlImageStatus(t, u, "rl-cs"); st != "created" {
		t.Errorf("after create --image: status %q", st)
	}
	if r := u.berth(t, "start", "rl-cs"); r.code != 0 {
		t.Errorf("start: %+v", r)
	}
	if r := u.berth(t, "kill", "--all", "rl-cs", "KILL"); r.code != 0 {
		t.Errorf("kill --all: %+v", r)
	}
	for i := 0; i < 200 && rlImageStatus(t, u, "rl-cs") != "stopped"; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if r := u.berth(t, "delete", "rl-cs"); r.code != 0 {
		t.Errorf("delete after kill --all: %+v", r)
	}
	rlImageNothingLeft(t, u, "rl-cs")

	// rm takes the image's layers away (their files are the user's other ids).
	if r := u.berth(t, "image", "rm", app); r.code != 0 {
		t.Errorf("image rm: %+v", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(u.store, "layers")); len(ents) != 0 {
		t.Errorf("image rm left layers: %v", ents)
	}
}

// rlImageNothingLeft checks that container id left no state, no container directory in the
// store, and no mount anywhere on the host.
func rlImageNothingLeft(t *testing.T, u *rlImageUser, id string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(u.xdg, "berth", id)); err == nil {
		t.Errorf("%s: its state directory was left", id)
	}
	if ents, _ := os.ReadDir(filepath.Join(u.store, "containers")); len(ents) != 0 {
		t.Errorf("%s: container directories left in the store: %v", id, ents)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(data, []byte(u.home)) {
		t.Errorf("%s: a mount under %s shows on the host", id, u.home)
	}
}

// TestRootlessImageBadMapping: a user without a subordinate range (or with a uid range and
// no gid range) gets an error naming the file and the user, and nothing is made; a store
// written under another mapping is refused, naming both maps.
func TestRootlessImageBadMapping(t *testing.T) {
	for _, c := range []struct {
		name           string
		subuid, subgid bool
		want           string
	}{
		{"berth-rlnosub", false, false, "no subordinate uid range for user berth-rlnosub"},
		{"berth-rlnosubgid", true, false, "no subordinate gid range for user berth-rlnosubgid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := rlImageEnsureUser(t, c.name, c.subuid, c.subgid)
			app := rlImageLayout(t, u) + ":app"
			r := u.berth(t, "run", "--image", app, "rl-bad", "true")
			file := map[bool]string{false: "/etc/subuid", true: "/etc/subgid"}[c.subuid]
			if r.code == 0 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, file) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("run --image without a range: want one line naming %q and %s, got %+v", c.want, file, r)
			}
			if _, err := os.Lstat(filepath.Join(u.home, ".local")); err == nil {
				t.Errorf("a failed run made %s/.local", u.home)
			}
			if ents, _ := os.ReadDir(filepath.Join(u.xdg, "berth")); len(ents) != 0 {
				t.Errorf("a failed run left state: %v", ents)
			}
		})
	}
	t.Run("no-uidmap", func(t *testing.T) {
		u := rlImageEnsureUser(t, "berth-rlimage", true, true)
		app := rlImageLayout(t, u) + ":app"
		u.path = filepath.Join(u.home, "empty-path") // newuidmap not found there
		r := u.berth(t, "run", "--image", app, "rl-nomap", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "needs newuidmap (Debian package uidmap), which is not installed") {
			t.Errorf("run --image without newuidmap on PATH: want an error naming newuidmap and uidmap, got %+v", r)
		}
		if _, err := os.Lstat(filepath.Join(u.home, ".local")); err == nil {
			t.Errorf("a failed run made %s/.local", u.home)
		}
		if ents, _ := os.ReadDir(filepath.Join(u.xdg, "berth")); len(ents) != 0 {
			t.Errorf("a failed run left state: %v", ents)
		}
	})
	t.Run("owner-beyond-the-range", func(t *testing.T) {
		u := rlImageEnsureUser(t, "berth-rlimage", true, true)
		layout := rlImageLayout(t, u)
		addRawLayer(t, layout, "base", "bigid", []tar.Header{{Name: "big", Typeflag: tar.TypeReg, Uid: 70000, Gid: 70000}}, map[string]string{"big": "x"})
		exec.Command("chmod", "-R", "a+rX", layout).Run()
		r := u.berth(t, "run", "--image", layout+":bigid", "rl-big", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "owner 70000:70000 is not mapped") || !strings.Contains(r.stderr, "/etc/subuid") {
			t.Errorf("run --image of a file owned by 70000 with a 65536-id range: want an error naming the owner and /etc/subuid, got %+v", r)
		}
		rlImageNothingLeft(t, u, "rl-big")
		ents, _ := os.ReadDir(filepath.Join(u.store, "layers"))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				t.Errorf("a half-applied layer was left: %s", e.Name())
			}
		}
		u.berth(t, "image", "prune")
	})
	t.Run("store-of-another-mapping", func(t *testing.T) {
		u := rlImageEnsureUser(t, "berth-rlimage", true, true)
		app := rlImageLayout(t, u) + ":app"
		if r := u.berth(t, "image", "load", app); r.code != 0 {
			t.Fatalf("image load: %+v", r)
		}
		p := filepath.Join(u.store, "store.json")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		other := strings.Replace(string(data), fmt.Sprintf("1 %d 65536", u.subuid), "1 700000 65536", 1)
		if err := os.WriteFile(p, []byte(other), 0o600); err != nil {
			t.Fatal(err)
		}
		r := u.berth(t, "run", "--image", app, "rl-other", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "1 700000 65536") || !strings.Contains(r.stderr, "/etc/subuid") {
			t.Errorf("run --image on a store of another mapping: want an error naming both maps, got %+v", r)
		}
		if ents, _ := os.ReadDir(filepath.Join(u.store, "containers")); len(ents) != 0 {
			t.Errorf("the refused run left container directories: %v", ents)
		}
		os.WriteFile(p, data, 0o600)
		if r := u.berth(t, "image", "rm", app); r.code != 0 {
			t.Errorf("image rm: %+v", r)
		}
	})
}

// TestRootlessImageEscapingEntriesRefused: in the user namespace as on the host, no entry of a
// layer lands outside its directory (through "..", a symlink the layer made, or a hard link),
// even in a directory the user may write.
func TestRootlessImageEscapingEntriesRefused(t *testing.T) {
	u := rlImageEnsureUser(t, "berth-rlimage", true, true)
	layout := rlImageLayout(t, u)
	victim := filepath.Join(u.home, "victim") // the user's own: writable, were an entry to get there
	if err := os.Mkdir(victim, 0o777); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]tar.Header{
		"dotdot": {{Name: "../../../../../../../../" + victim + "/dotdot", Typeflag: tar.TypeReg}},
		"symlink": {
			{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: victim},
			{Name: "evil/through-link", Typeflag: tar.TypeReg},
		},
		"relative-symlink": {
			{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../../../../.."},
			{Name: "up" + victim + "/through-rel-link", Typeflag: tar.TypeReg},
		},
		"hardlink":        {{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../../../../../../../../etc/passwd"}},
		"whiteout-dotdot": {{Name: "data/.wh...", Typeflag: tar.TypeReg}},
	}
	for name, hs := range cases {
		t.Run(name, func(t *testing.T) {
			data := map[string]string{}
			for _, h := range hs {
				if h.Typeflag == tar.TypeReg && !strings.Contains(h.Name, ".wh.") {
					data[h.Name] = "pwned\n"
				}
			}
			addRawLayer(t, layout, "base", name, hs, data)
			exec.Command("chmod", "-R", "a+rX", layout).Run()
			r := u.berth(t, "run", "--image", layout+":"+name, "rl-esc", "true")
			if r.code == 0 || !strings.Contains(r.stderr, "refused") {
				t.Errorf("run --image: exit %d, stderr %q: want it refused", r.code, r.stderr)
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 0 {
				t.Errorf("an entry escaped into %s: %v", victim, ents)
			}
			rlImageNothingLeft(t, u, "rl-esc")
			if ents, _ := os.ReadDir(filepath.Join(u.store, "layers")); len(ents) > 0 {
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".tmp-") {
						t.Errorf("a half-applied layer was left: %s", e.Name())
					}
				}
			}
		})
	}
}

func rlImageStatus(t *testing.T, u *rlImageUser, id string) string {
	t.Helper()
	r := u.berth(t, "state", id)
	var st struct{ Status string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		return ""
	}
	return st.Status
}

// TestRootlessImageSparseFile: a layer of a few KiB declaring a sparse file of 256 MiB (GNU
// tar --sparse) is stored with its holes: the container sees the whole file, the user's disk
// holds a few blocks of it (written as zeros, a tiny image could fill the disk).
func TestRootlessImageSparseFile(t *testing.T) {
	u := rlImageEnsureUser(t, "berth-rlimage", true, true)
	layout := rlImageLayout(t, u)
	src := t.TempDir()
	const size = 256 << 20
	if err := os.WriteFile(filepath.Join(src, "big"), []byte("start"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(src, "big"), size); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "sparse.tar")
	if err := sh(src, "tar", "--sparse", "--format=posix", "-cf", layer, "big"); err != nil {
		t.Fatal(err)
	}
	if err := sh("", "umoci", "raw", "add-layer", "--image", layout+":base", "--tag", "sparse", layer); err != nil {
		t.Fatal(err)
	}
	exec.Command("chmod", "-R", "a+rX", layout).Run()
	r := u.berth(t, "run", "--image", layout+":sparse", "rl-sparse", "sh", "-c", "stat -c %s /big; head -c 5 /big")
	if r.code != 0 || r.stdout != fmt.Sprintf("%d\nstart", size) {
		t.Fatalf("run --image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	found := false
	filepath.Walk(filepath.Join(u.store, "layers"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "big" {
			found = true
			if st := fi.Sys().(*syscall.Stat_t); st.Blocks*512 > 1<<20 {
				t.Errorf("%s: %d bytes on disk for a sparse file of %d: holes written as zeros", p, st.Blocks*512, fi.Size())
			}
		}
		return nil
	})
	if !found {
		t.Errorf("no layer of the store holds big")
	}
	rlImageNothingLeft(t, u, "rl-sparse")
}
