package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Images are built with umoci from the busybox rootfs, once, and shared read-only:
//
//	img:base  busybox
//	img:app   + a layer of owners, modes, set-id bits, xattrs, hard links, symlinks, a fifo
//	          and a device; + a layer that whites out a file and makes a directory opaque;
//	          config with Cmd, Env, WorkingDir, User, Labels, StopSignal
//	img:other busybox + a different layer (shares the base layer with img:app)
var (
	imgOnce sync.Once
	imgDir  string // holds the layout "img"
	imgErr  error
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (bash .ci/deps installs it)", tool)
		}
	}
}

func sh(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// testImages builds the shared layout.
func testImages(t *testing.T) string {
	t.Helper()
	needTools(t, "umoci")
	imgOnce.Do(func() { imgDir, imgErr = buildImages() })
	if imgErr != nil {
		t.Fatal(imgErr)
	}
	return imgDir
}

func buildImages() (string, error) {
	// Beside the binary under test: TestMain removes that directory at the end.
	dir, err := os.MkdirTemp(filepath.Dir(berthBin), "img-")
	if err != nil {
		return "", err
	}
	// app layer: every kind of entry and attribute.
	app := filepath.Join(dir, "app")
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(app, "data/sub"), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(app, "data/opq"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(app, "data/opq/old"), []byte("old\n"), 0o644) },
		func() error { return os.WriteFile(filepath.Join(app, "data/gone"), []byte("gone\n"), 0o644) },
		func() error { return os.WriteFile(filepath.Join(app, "data/file"), []byte("hello\n"), 0o640) },
		func() error { return os.Chown(filepath.Join(app, "data/file"), 1000, 1001) },
		func() error { return os.WriteFile(filepath.Join(app, "data/suid"), []byte("#!/bin/sh\n"), 0o755) },
		func() error { return os.Chown(filepath.Join(app, "data/suid"), 1000, 1000) },
		func() error { return syscall.Chmod(filepath.Join(app, "data/suid"), 0o4755) },
		func() error { return os.Chown(filepath.Join(app, "data/sub"), 1000, 1000) },
		func() error { return syscall.Chmod(filepath.Join(app, "data/sub"), 0o2750) },
		func() error { return os.Link(filepath.Join(app, "data/file"), filepath.Join(app, "data/hardlink")) },
		func() error { return os.Symlink("file", filepath.Join(app, "data/rel-link")) },
		func() error { return os.Symlink("/etc/passwd", filepath.Join(app, "data/abs-link")) },
		func() error { return unix.Mkfifo(filepath.Join(app, "data/fifo"), 0o600) },
		func() error {
			return unix.Mknod(filepath.Join(app, "data/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		},
		func() error {
			return unix.Setxattr(filepath.Join(app, "data/file"), "user.berth", []byte("xattr value"), 0)
		},
		func() error {
			return os.WriteFile(filepath.Join(app, "data/big"), bytes.Repeat([]byte("0123456789abcdef"), 300000), 0o644)
		},
		func() error {
			return os.WriteFile(filepath.Join(app, "etc-passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644)
		},
		func() error {
			return os.WriteFile(filepath.Join(app, "etc-group"), []byte("root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n"), 0o644)
		},
		func() error { return os.Chmod(filepath.Join(app, "data/null"), 0o666) },
		func() error { return os.MkdirAll(filepath.Join(app, "data/open"), 0o755) },
		func() error { return os.Chmod(filepath.Join(app, "data/open"), 0o777|os.ModeSticky) },
		func() error { return os.WriteFile(filepath.Join(app, "data/open/rw"), []byte("rw\n"), 0o644) },
		func() error { return os.Chmod(filepath.Join(app, "data/open/rw"), 0o666) },
		func() error { return os.MkdirAll(filepath.Join(dir, "opq"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "opq/new"), []byte("new\n"), 0o644) },
		func() error { return os.MkdirAll(filepath.Join(dir, "other"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "other/other"), []byte("other\n"), 0o644) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return "", err
		}
	}
	if err := unix.Setxattr(filepath.Join(app, "data/file"), "user.berth", []byte("xattr value"), 0); err != nil {
		return "", fmt.Errorf("the test directory does not take user xattrs: %w", err)
	}
	img := filepath.Join(dir, "img")
	cmds := [][]string{
		{"umoci", "init", "--layout", img},
		{"umoci", "new", "--image", img + ":base"},
		{"umoci", "insert", "--image", img + ":base", rootfs, "/"},
		{"umoci", "config", "--image", img + ":base", "--config.cmd", "sh"},
		{"umoci", "insert", "--image", img + ":base", "--tag", "app", app + "/data", "/data"},
		{"umoci", "insert", "--image", img + ":app", app + "/etc-passwd", "/etc/passwd"},
		{"umoci", "insert", "--image", img + ":app", app + "/etc-group", "/etc/group"},
		{"umoci", "insert", "--image", img + ":app", "--whiteout", "/data/gone"},
		{"umoci", "insert", "--image", img + ":app", "--opaque", dir + "/opq", "/data/opq"},
		{"umoci", "config", "--image", img + ":app", "--config.entrypoint", "/bin/sh", "--config.entrypoint=-c",
			"--config.cmd", "echo app; exit 3", "--config.env", "FOO=bar", "--config.env", "PATH=/bin:/sbin",
			"--config.workingdir", "/data", "--config.user", "alice", "--config.label", "com.example.l=v",
			"--config.stopsignal", "SIGUSR1"},
		{"umoci", "insert", "--image", img + ":base", "--tag", "other", dir + "/other", "/other"},
		{"umoci", "config", "--image", img + ":base", "--tag", "wd", "--config.workingdir", "/new/wd"},
	}
	for _, c := range cmds {
		if err := sh(dir, c[0], c[1:]...); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// entryInfo is what two trees must agree on.
type entryInfo struct {
	Type, Mode, Owner, Link, Hash, Xattrs, Dev, Mtime string
	Links                                             uint64
}

// snapshot describes every path under dir; hard links are reported by the other names of
// their inode.
func snapshot(t *testing.T, dir string, mtimes bool) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryInfo{Mode: fmt.Sprintf("%o", st.Mode&0o7777), Owner: fmt.Sprintf("%d:%d", st.Uid, st.Gid)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			e.Type = "dir"
		case unix.S_IFREG:
			e.Type = "file"
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			e.Hash = hex.EncodeToString(h[:])
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		case unix.S_IFLNK:
			e.Type = "symlink"
			e.Link, _ = os.Readlink(p)
		case unix.S_IFIFO:
			e.Type = "fifo"
		case unix.S_IFCHR:
			e.Type = "char"
			e.Dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		default:
			e.Type = fmt.Sprintf("%o", st.Mode&unix.S_IFMT)
		}
		if mtimes {
			e.Mtime = fmt.Sprint(st.Mtim.Sec)
		}
		if e.Type != "symlink" {
			var names []string
			buf := make([]byte, 4096)
			if n, err := unix.Llistxattr(p, buf); err == nil {
				for _, x := range strings.Split(string(buf[:n]), "\x00") {
					if strings.HasPrefix(x, "user.") {
						v := make([]byte, 4096)
						m, _ := unix.Lgetxattr(p, x, v)
						names = append(names, x+"="+string(v[:max(m, 0)]))
					}
				}
			}
			sort.Strings(names)
			e.Xattrs = strings.Join(names, ",")
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		sort.Strings(names)
		for _, n := range names {
			e := out[n]
			e.Links = uint64(len(names))
			e.Link = strings.Join(names, "|")
			out[n] = e
		}
	}
	return out
}

func compareTrees(t *testing.T, got, want map[string]entryInfo, what string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: got %+v, umoci %+v", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = diffs[:30]
		}
		t.Errorf("%s differs from umoci unpack's (%d entries):\n%s", what, len(want), strings.Join(diffs, "\n"))
	}
}

func umociUnpack(t *testing.T, ref string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle")
	if err := sh("", "umoci", "unpack", "--image", ref, out); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, "rootfs")
}

func TestImageUnpackMatchesUmoci(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	for _, tag := range []string{"base", "app", "other"} {
		ref := filepath.Join(dir, "img") + ":" + tag
		bundle := filepath.Join(t.TempDir(), "b")
		e.mustBerth("image", "unpack", ref, bundle)
		compareTrees(t, snapshot(t, filepath.Join(bundle, "rootfs"), true), snapshot(t, umociUnpack(t, ref), true), "berth image unpack "+tag)
	}
	// The app image's config, converted.
	bundle := filepath.Join(t.TempDir(), "b")
	e.mustBerth("image", "unpack", filepath.Join(dir, "img")+":app", bundle)
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Process.Args, " "); got != "/bin/sh -c echo app; exit 3" {
		t.Errorf("args %q", got)
	}
	if s.Process.Cwd != "/data" || s.Process.User.UID != 1000 || s.Process.User.GID != 1000 ||
		len(s.Process.User.AdditionalGids) != 1 || s.Process.User.AdditionalGids[0] != 50 {
		t.Errorf("cwd %q user %+v", s.Process.Cwd, s.Process.User)
	}
	env := strings.Join(s.Process.Env, " ")
	if !strings.Contains(env, "FOO=bar") || !strings.Contains(env, "PATH=/bin:/sbin") || strings.Count(env, "PATH=") != 1 {
		t.Errorf("env %q", env)
	}
	if s.Annotations["com.example.l"] != "v" || s.Annotations["org.opencontainers.image.stopSignal"] != "SIGUSR1" ||
		s.Annotations["org.opencontainers.image.architecture"] != "amd64" {
		t.Errorf("annotations %v", s.Annotations)
	}
	if s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
}

func overlayMounted(path string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == path && strings.Contains(l, " - overlay ") {
			return true
		}
	}
	return false
}

// overlayOptions is the super options of the overlay mounted at path.
func overlayOptions(path string) string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == path {
			if _, after, ok := strings.Cut(l, " - overlay "); ok {
				if g := strings.Fields(after); len(g) > 1 {
					return g[1]
				}
			}
		}
	}
	return ""
}

func layerDirs(t *testing.T, root string) map[string]int64 {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, ".images/layers"))
	out := map[string]int64{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fi.ModTime().UnixNano()
	}
	return out
}

func TestImageRunAndDelete(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	app := filepath.Join(dir, "img") + ":app"
	// The image's own command, user, cwd and env; its exit status.
	r := e.berth("run", "--image", app, "img-run1")
	if r.code != 3 || r.stdout != "app\n" {
		t.Fatalf("run --image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Arguments after the id replace Cmd (the Entrypoint /bin/sh -c stays).
	r = e.berth("run", "--image", app, "img-run2", "--", "id -u; id -G; pwd; echo $FOO; cat file; ls /data/opq; test -e /data/gone || echo gone")
	if r.code != 0 || r.stdout != "1000\n1000 50\n/data\nbar\nhello\nnew\ngone\n" {
		t.Fatalf("run --image with args: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A WorkingDir the image lacks is made.
	r = e.berth("run", "--image", filepath.Join(dir, "img")+":wd", "img-wd", "pwd")
	if r.code != 0 || r.stdout != "/new/wd\n" {
		t.Errorf("run --image with a missing WorkingDir: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, ".images/containers")); len(ents) != 0 {
		t.Errorf("run left container directories: %v", ents)
	}
	// Two containers of one image: one copy of each layer, separate uppers.
	layers := layerDirs(t, e.root)
	e.mustBerth("create", "--image", app, "img-c1", "echo one > /data/sub/w")
	e.mustBerth("create", "--image", app, "img-c2", "cat /data/sub/w 2>/dev/null || echo none")
	if got := layerDirs(t, e.root); fmt.Sprint(got) != fmt.Sprint(layers) {
		t.Errorf("layers changed by creating containers: %v -> %v", layers, got)
	}
	rootfs1 := filepath.Join(e.root, ".images/containers/img-c1/rootfs")
	if !overlayMounted(rootfs1) {
		t.Fatalf("%s is not an overlay mount", rootfs1)
	}
	// The upper is thrown away on delete: the overlay never syncs it (its unmount did, a
	// few ms on a disk; see docs/performance.md).
	// (Linux 6.7 and later show it as fsync=volatile.)
	if opts := overlayOptions(rootfs1); !strings.Contains(","+opts+",", ",volatile,") && !strings.Contains(","+opts+",", ",fsync=volatile,") {
		t.Errorf("the overlay rootfs is not volatile: %s", opts)
	}
	// The merged tree is umoci's (before anything writes to it).
	compareTrees(t, snapshot(t, rootfs1, true), snapshot(t, umociUnpack(t, app), true), "the overlay rootfs of run --image")
	if s := e.state("img-c1"); s.Status != "created" {
		t.Fatalf("status %s", s.Status)
	}
	e.mustBerth("start", "img-c1")
	e.waitStatus("img-c1", "stopped")
	e.mustBerth("start", "img-c2")
	e.waitStatus("img-c2", "stopped")
	if data, err := os.ReadFile(filepath.Join(e.root, ".images/containers/img-c1/upper/data/sub/w")); err != nil || string(data) != "one\n" {
		t.Errorf("c1's write is not in its upper: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(e.root, ".images/containers/img-c2/upper/data/sub/w")); err == nil {
		t.Errorf("c1's write shows in c2's upper")
	}
	e.mustBerth("delete", "img-c1")
	if overlayMounted(rootfs1) {
		t.Errorf("delete left the overlay mounted")
	}
	if _, err := os.Stat(filepath.Join(e.root, ".images/containers/img-c1")); err == nil {
		t.Errorf("delete left the upper and work directories")
	}
	e.mustBerth("delete", "img-c2")
	if got := layerDirs(t, e.root); fmt.Sprint(got) != fmt.Sprint(layers) {
		t.Errorf("delete touched the layer store: %v -> %v", layers, got)
	}
	imgGone(e, "img-c1")
}

func TestImageLayersAppliedOnce(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	img := filepath.Join(dir, "img")
	load := func(tag string) string {
		r := e.mustBerth("--debug", "image", "load", img+":"+tag)
		for _, l := range strings.Split(r.stderr, "\n") {
			if i := strings.Index(l, "layers applied"); i >= 0 {
				return l[strings.Index(l, "image: ")+7 : i+len("layers applied, ")+1]
			}
		}
		t.Fatalf("no count in %q", r.stderr)
		return ""
	}
	if got := load("app"); got != "6 layers applied, 0" {
		t.Errorf("first load: %q", got)
	}
	before := layerDirs(t, e.root)
	if got := load("app"); got != "0 layers applied, 6" {
		t.Errorf("second load of the same image: %q", got)
	}
	// other shares busybox with app: only its own layer is applied.
	if got := load("other"); got != "1 layers applied, 1" {
		t.Errorf("load of an image sharing the base layer: %q", got)
	}
	after := layerDirs(t, e.root)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("layer %s was rewritten", k)
		}
	}
	if len(after) != 7 {
		t.Errorf("%d layers stored, want 7", len(after))
	}
	// ls, rm (refused while a container uses it), prune.
	r := e.mustBerth("image", "ls")
	if !strings.Contains(r.stdout, img+":app") || !strings.Contains(r.stdout, img+":other") {
		t.Errorf("image ls:\n%s", r.stdout)
	}
	e.mustBerth("create", "--image", img+":other", "img-keep")
	if r := e.berth("image", "rm", img+":other"); r.code == 0 || !strings.Contains(r.stderr, "img-keep") {
		t.Errorf("rm of an image in use: exit %d, %s", r.code, r.stderr)
	}
	e.mustBerth("image", "rm", img+":app")
	if got := layerDirs(t, e.root); len(got) != 2 {
		t.Errorf("after rm of app, %d layers (want other's 2)", len(got))
	}
	e.mustBerth("delete", "img-keep")
	e.mustBerth("image", "rm", img+":other")
	e.mustBerth("image", "prune")
	if got := layerDirs(t, e.root); len(got) != 0 {
		t.Errorf("after rm and prune, layers left: %v", got)
	}
}

// copyLayout copies the shared layout so a test may damage it.
func copyLayout(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if err := sh("", "cp", "-a", filepath.Join(testImages(t), "img"), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// manifestOf returns the parsed manifest of tag and its layer digests' hex.
func layersOf(t *testing.T, layout, tag string) []string {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	data, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	json.Unmarshal(data, &idx)
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			var man struct{ Layers []struct{ Digest string } }
			data, _ := os.ReadFile(filepath.Join(layout, "blobs/sha256", strings.TrimPrefix(m.Digest, "sha256:")))
			json.Unmarshal(data, &man)
			var out []string
			for _, l := range man.Layers {
				out = append(out, strings.TrimPrefix(l.Digest, "sha256:"))
			}
			return out
		}
	}
	t.Fatalf("no tag %s", tag)
	return nil
}

func assertStoreClean(t *testing.T, root string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, ".images/layers"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("a half layer is left: %s", e.Name())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".images/containers")); len(ents) != 0 {
		t.Errorf("container directories left: %v", ents)
	}
}

func TestImageBadBlobs(t *testing.T) {
	layout := copyLayout(t)
	layers := layersOf(t, layout, "app")
	top := filepath.Join(layout, "blobs/sha256", layers[1]) // the data layer
	orig, err := os.ReadFile(top)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		damage     func() error
	}{
		{"corrupted", "digest mismatch", func() error {
			d := append([]byte{}, orig...)
			d[len(d)/2] ^= 0xff
			return os.WriteFile(top, d, 0o644)
		}},
		{"truncated", "truncated", func() error { return os.WriteFile(top, orig[:len(orig)-100], 0o644) }},
		{"longer", "larger than", func() error { return os.WriteFile(top, append(append([]byte{}, orig...), 0), 0o644) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.damage(); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(top, orig, 0o644)
			e := newEnv(t)
			for _, args := range [][]string{
				{"image", "load", layout + ":app"},
				{"run", "--image", layout + ":app", "img-bad"},
				{"image", "unpack", layout + ":app", filepath.Join(t.TempDir(), "b")},
			} {
				r := e.berth(args...)
				if r.code == 0 || !strings.Contains(r.stderr, "sha256:"+layers[1]) || !strings.Contains(r.stderr, c.want) {
					t.Errorf("berth %s: exit %d, stderr %q: want an error naming the blob and %q", args[0], r.code, r.stderr, c.want)
				}
			}
			if _, err := os.Stat(filepath.Join(e.root, ".images/layers", layers[1])); err == nil {
				t.Errorf("the bad layer is in the store")
			}
			assertStoreClean(t, e.root)
			imgGone(e, "img-bad")
		})
	}
	// A corrupted config is named too.
	t.Run("config", func(t *testing.T) {
		e := newEnv(t)
		l2 := copyLayout(t)
		var idx struct{ Manifests []struct{ Digest string } }
		data, _ := os.ReadFile(filepath.Join(l2, "index.json"))
		json.Unmarshal(data, &idx)
		var man struct{ Config struct{ Digest string } }
		data, _ = os.ReadFile(filepath.Join(l2, "blobs/sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
		json.Unmarshal(data, &man)
		cfg := filepath.Join(l2, "blobs/sha256", strings.TrimPrefix(man.Config.Digest, "sha256:"))
		c, _ := os.ReadFile(cfg)
		c[len(c)-2] = ' '
		os.WriteFile(cfg, c, 0o644)
		for _, tag := range []string{"base", "app", "other"} {
			if r := e.berth("image", "load", l2+":"+tag); r.code != 0 && strings.Contains(r.stderr, man.Config.Digest) && strings.Contains(r.stderr, "digest mismatch") {
				return
			}
		}
		t.Errorf("no load named the corrupted config %s", man.Config.Digest)
	})
}

// addRawLayer appends a hand-made tar to tag (as new tag "new").
func addRawLayer(t *testing.T, layout, tag, newTag string, entries []tar.Header, data map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if d, ok := data[h.Name]; ok {
			h.Size = int64(len(d))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if d, ok := data[h.Name]; ok {
			tw.Write([]byte(d))
		}
	}
	tw.Close()
	f := filepath.Join(t.TempDir(), "layer.tar")
	os.WriteFile(f, buf.Bytes(), 0o644)
	if err := sh("", "umoci", "raw", "add-layer", "--image", layout+":"+tag, "--tag", newTag, f); err != nil {
		t.Fatal(err)
	}
}

func TestImageEscapingEntriesRefused(t *testing.T) {
	layout := copyLayout(t)
	victim := filepath.Join(t.TempDir(), "victim")
	os.MkdirAll(victim, 0o755)
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
		"hardlink": {{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../../../../../../../../etc/passwd"}},
		// ".wh..." names the parent of its directory: unpack, made to apply the layers one
		// after another by the hard link to a file of the base layer, emptied the
		// directory above rootfs with it.
		// (The store refuses such a link first: only unpack gets there.)
		"whiteout-dotdot-unpack": {
			{Name: "bin/linked", Typeflag: tar.TypeLink, Linkname: "bin/busybox"},
			{Name: ".wh...", Typeflag: tar.TypeReg},
		},
		"whiteout-dotdot": {{Name: "sub/.wh...", Typeflag: tar.TypeReg}},
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
			e := newEnv(t)
			for _, args := range [][]string{
				{"image", "load", layout + ":" + name},
				{"run", "--image", layout + ":" + name, "img-esc", "true"},
				{"image", "unpack", layout + ":" + name, filepath.Join(t.TempDir(), "b")},
			} {
				if strings.HasSuffix(name, "-unpack") && args[1] != "unpack" {
					continue
				}
				r := e.berth(args...)
				if r.code == 0 || !strings.Contains(r.stderr, "refused") {
					t.Errorf("berth %s: exit %d, stderr %q: want it refused", args[0], r.code, r.stderr)
				}
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 0 {
				t.Errorf("an entry escaped into %s: %v", victim, ents)
			}
			assertStoreClean(t, e.root)
		})
	}
}

func TestImageManyLayers(t *testing.T) {
	layout := copyLayout(t)
	// 80 layers of long store paths overflow mount(2)'s one page of options.
	tag := "base"
	for i := 0; i < 80; i++ {
		next := fmt.Sprintf("many%d", i)
		addRawLayer(t, layout, tag, next, []tar.Header{{Name: fmt.Sprintf("layer%02d", i), Typeflag: tar.TypeReg}},
			map[string]string{fmt.Sprintf("layer%02d", i): fmt.Sprintf("%d\n", i)})
		tag = next
	}
	e := newEnv(t)
	r := e.berth("run", "--image", layout+":"+tag, "img-many", "sh", "-c", "cat /layer00 /layer79; ls / | grep -c layer")
	if r.code != 0 || r.stdout != "0\n79\n80\n" {
		t.Fatalf("run of an 81-layer image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	assertStoreClean(t, e.root)
}

func TestImageFailedCreateReleases(t *testing.T) {
	dir := testImages(t)
	e := newEnv(t)
	// The pid file's directory does not exist: create fails after the rootfs is made.
	r := e.berth("create", "--image", filepath.Join(dir, "img")+":base", "--pid-file", "/nonexistent/dir/pid", "img-fail", "true")
	if r.code == 0 {
		t.Fatal("create with a bad --pid-file succeeded")
	}
	if overlayMounted(filepath.Join(e.root, ".images/containers/img-fail/rootfs")) {
		t.Errorf("a failed create left its overlay mounted")
	}
	assertStoreClean(t, e.root)
	imgGone(e, "img-fail")
}

func TestImageArchivesAndZstd(t *testing.T) {
	needTools(t, "skopeo")
	dir := testImages(t)
	img := filepath.Join(dir, "img")
	tmp := t.TempDir()
	srcs := map[string]string{
		"oci-archive":    filepath.Join(tmp, "oci.tar"),
		"docker-archive": filepath.Join(tmp, "docker.tar"),
		"zstd":           filepath.Join(tmp, "zstd"),
	}
	copies := map[string][]string{
		"oci-archive":    {"copy", "oci:" + img + ":app", "oci-archive:" + srcs["oci-archive"] + ":app"},
		"docker-archive": {"copy", "oci:" + img + ":app", "docker-archive:" + srcs["docker-archive"] + ":example/app:v1"},
		"zstd":           {"copy", "--dest-compress-format", "zstd", "oci:" + img + ":app", "oci:" + srcs["zstd"] + ":app"},
	}
	refs := map[string]string{
		"oci-archive":    srcs["oci-archive"] + ":app",
		"docker-archive": srcs["docker-archive"] + ":example/app:v1",
		"zstd":           srcs["zstd"] + ":app",
	}
	want := snapshot(t, umociUnpack(t, img+":app"), true)
	copies["oci-archive.gz"] = []string{"copy", "oci:" + img + ":app", "oci-archive:" + filepath.Join(tmp, "gz.tar") + ":app"}
	refs["oci-archive.gz"] = filepath.Join(tmp, "gz.tar.gz") + ":app"
	for name, args := range copies {
		t.Run(name, func(t *testing.T) {
			if err := sh("", "skopeo", args...); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, ".gz") {
				if err := sh("", "gzip", filepath.Join(tmp, "gz.tar")); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnv(t)
			bundle := filepath.Join(t.TempDir(), "b")
			e.mustBerth("image", "unpack", refs[name], bundle)
			compareTrees(t, snapshot(t, filepath.Join(bundle, "rootfs"), true), want, "unpack of "+name)
			r := e.berth("run", "--image", refs[name], "img-"+strings.TrimSuffix(name, ".gz"))
			if r.code != 3 || r.stdout != "app\n" {
				t.Errorf("run --image %s: exit %d, stdout %q, stderr %q", name, r.code, r.stdout, r.stderr)
			}
		})
	}
}

// writeBlob stores data in layout and returns its descriptor fields.
func writeBlob(t *testing.T, layout string, data []byte) (string, int) {
	t.Helper()
	h := sha256.Sum256(data)
	d := hex.EncodeToString(h[:])
	if err := os.WriteFile(filepath.Join(layout, "blobs/sha256", d), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + d, len(data)
}

func readBlobJSON(t *testing.T, layout, digest string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layout, "blobs/sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// TestImageNestedIndexDockerTypes tags a nested index holding an arm64 image (OCI) and the
// amd64 app image rewritten with Docker schema 2 media types.
func TestImageNestedIndexDockerTypes(t *testing.T) {
	layout := copyLayout(t)
	var idx map[string]any
	data, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	json.Unmarshal(data, &idx)
	var appDigest string
	for _, m := range idx["manifests"].([]any) {
		m := m.(map[string]any)
		if m["annotations"].(map[string]any)["org.opencontainers.image.ref.name"] == "app" {
			appDigest = m["digest"].(string)
		}
	}
	var man map[string]any
	readBlobJSON(t, layout, appDigest, &man)
	// amd64, Docker media types.
	man["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
	man["config"].(map[string]any)["mediaType"] = "application/vnd.docker.container.image.v1+json"
	for _, l := range man["layers"].([]any) {
		l.(map[string]any)["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	}
	mdata, _ := json.Marshal(man)
	dockerD, dockerN := writeBlob(t, layout, mdata)
	// arm64: the same layers under a config that says arm64.
	var cfg map[string]any
	readBlobJSON(t, layout, man["config"].(map[string]any)["digest"].(string), &cfg)
	cfg["architecture"] = "arm64"
	cdata, _ := json.Marshal(cfg)
	cd, cn := writeBlob(t, layout, cdata)
	man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
	man["config"] = map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}
	for _, l := range man["layers"].([]any) {
		l.(map[string]any)["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
	}
	mdata, _ = json.Marshal(man)
	armD, armN := writeBlob(t, layout, mdata)
	nested, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{
			map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": armD, "size": armN,
				"platform": map[string]any{"os": "linux", "architecture": "arm64"}},
			map[string]any{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": dockerD, "size": dockerN,
				"platform": map[string]any{"os": "linux", "architecture": "amd64"}},
		}})
	nd, nn := writeBlob(t, layout, nested)
	idx["manifests"] = append(idx["manifests"].([]any), map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json",
		"digest": nd, "size": nn, "annotations": map[string]any{"org.opencontainers.image.ref.name": "multi"}})
	data, _ = json.Marshal(idx)
	os.WriteFile(filepath.Join(layout, "index.json"), data, 0o644)

	e := newEnv(t)
	if r := e.berth("run", "--image", layout+":multi", "img-multi"); r.code != 3 || r.stdout != "app\n" {
		t.Errorf("run --image of the nested index: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	bundle := filepath.Join(t.TempDir(), "b")
	e.mustBerth("image", "unpack", "--platform", "linux/arm64", layout+":multi", bundle)
	var s specs.Spec
	data, _ = os.ReadFile(filepath.Join(bundle, "config.json"))
	json.Unmarshal(data, &s)
	if s.Annotations["org.opencontainers.image.architecture"] != "arm64" {
		t.Errorf("--platform linux/arm64 picked %q", s.Annotations["org.opencontainers.image.architecture"])
	}
	if r := e.berth("image", "unpack", "--platform", "linux/s390x", layout+":multi", filepath.Join(t.TempDir(), "c")); r.code == 0 || !strings.Contains(r.stderr, "linux/s390x") {
		t.Errorf("an absent platform: exit %d, %q", r.code, r.stderr)
	}
	if r := e.berth("image", "load", layout+":nosuchtag"); r.code == 0 || !strings.Contains(r.stderr, "nosuchtag") || !strings.Contains(r.stderr, "multi") {
		t.Errorf("an absent tag: exit %d, %q", r.code, r.stderr)
	}
}

// TestImageConcurrentLoads: berths racing on one store apply each layer once between them,
// and a half layer left by an interrupted apply is not trusted.
func TestImageConcurrentLoads(t *testing.T) {
	dir := testImages(t)
	ref := filepath.Join(dir, "img") + ":app"
	e := newEnv(t)
	// Learn the diffIDs, then start again from an empty store with a stale half layer.
	e.mustBerth("image", "load", ref)
	var recs []struct{ DiffIDs []string }
	json.Unmarshal([]byte(e.mustBerth("image", "ls", "--format", "json").stdout), &recs)
	if len(recs) != 1 || len(recs[0].DiffIDs) != 6 {
		t.Fatalf("image ls: %+v", recs)
	}
	os.RemoveAll(filepath.Join(e.root, ".images"))
	key := strings.TrimPrefix(recs[0].DiffIDs[0], "sha256:")
	stale := filepath.Join(e.root, ".images/layers/.tmp-"+key+"-1234")
	os.MkdirAll(stale, 0o755)
	os.WriteFile(filepath.Join(stale, "junk"), nil, 0o644)

	const n = 4
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.berth("--debug", "image", "load", ref)
		}(i)
	}
	wg.Wait()
	total := 0
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("concurrent load: exit %d: %s", r.code, r.stderr)
		}
		var applied int
		if i := strings.Index(r.stderr, "image: "); i >= 0 {
			fmt.Sscanf(r.stderr[i+len("image: "):], "%d", &applied)
		}
		total += applied
	}
	if total != 6 {
		t.Errorf("%d concurrent loads applied %d layers between them, want 6", n, total)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("the stale half layer is still there")
	}
	if _, err := os.Stat(filepath.Join(e.root, ".images/layers", key, "bin/busybox")); err != nil {
		t.Errorf("the layer was not applied properly: %v", err)
	}
	assertStoreClean(t, e.root)
}

// TestImageKilledLoad kills berth while it applies a big layer: what it leaves is never taken
// for the layer, and the next load applies it whole.
func TestImageKilledLoad(t *testing.T) {
	layout := copyLayout(t)
	big := filepath.Join(t.TempDir(), "big")
	os.MkdirAll(big, 0o755)
	// 96 MiB of incompressible bytes, deterministic, in 1 MiB files.
	block := make([]byte, 1<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < 96; i++ {
		for j := 0; j < len(block); j += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := 0; k < 8; k++ {
				block[j+k] = byte(x >> (8 * k))
			}
		}
		os.WriteFile(filepath.Join(big, fmt.Sprintf("f%02d", i)), block, 0o644)
	}
	if err := sh("", "umoci", "insert", "--image", layout+":base", "--tag", "big", big, "/big"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	ref := layout + ":big"
	cmd := exec.Command(berthBin, "--root", e.root, "image", "load", ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has begun writing the big layer.
	layers := filepath.Join(e.root, ".images/layers")
	seen := false
	for deadline := time.Now().Add(30 * time.Second); !seen && time.Now().Before(deadline); {
		tmps, _ := filepath.Glob(filepath.Join(layers, ".tmp-*", "big", "f0*"))
		seen = len(tmps) > 0
		time.Sleep(200 * time.Microsecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !seen {
		t.Fatal("never saw the big layer being written")
	}
	ents, _ := os.ReadDir(layers)
	var complete []string
	for _, en := range ents {
		if !strings.HasPrefix(en.Name(), ".tmp-") {
			complete = append(complete, en.Name())
		}
	}
	for _, c := range complete {
		files, _ := filepath.Glob(filepath.Join(layers, c, "big", "f*"))
		if len(files) != 0 && len(files) != 96 {
			t.Fatalf("a half layer is in place as %s: %d of 96 files", c, len(files))
		}
		if len(files) == 96 {
			t.Logf("the load finished before it was killed")
		}
	}
	r := e.mustBerth("--debug", "image", "load", ref)
	if files, _ := filepath.Glob(filepath.Join(layers, "*", "big", "f*")); len(files) != 96 {
		t.Errorf("after the second load, %d of 96 files (%s)", len(files), r.stderr)
	}
	assertStoreClean(t, e.root)
}

// TestImageCrossLayerHardLink: a hard link to a file of a lower layer unpacks (one layer after
// another) as umoci does, and the store refuses it clearly.
func TestImageCrossLayerHardLink(t *testing.T) {
	layout := copyLayout(t)
	addRawLayer(t, layout, "base", "xlink", []tar.Header{{Name: "bin/linked", Typeflag: tar.TypeLink, Linkname: "bin/busybox"}}, nil)
	e := newEnv(t)
	bundle := filepath.Join(t.TempDir(), "b")
	e.mustBerth("image", "unpack", layout+":xlink", bundle)
	compareTrees(t, snapshot(t, filepath.Join(bundle, "rootfs"), true), snapshot(t, umociUnpack(t, layout+":xlink"), true), "unpack with a link across layers")
	if r := e.berth("image", "load", layout+":xlink"); r.code == 0 || !strings.Contains(r.stderr, "lower layer") {
		t.Errorf("load of a link across layers: exit %d, %q", r.code, r.stderr)
	}
	assertStoreClean(t, e.root)
}

// imgGone checks that container id left no state and no cgroup (assertGone also looks for any
// init process on the machine, which other suites running at the same time may own).
func imgGone(e *env, id string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		e.t.Errorf("state directory of %s left behind", id)
	}
	for _, h := range []string{"pids", "memory", "cpu", "freezer", "devices", ""} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "berth", id)); err == nil {
			e.t.Errorf("cgroup %s of %s left behind", h, id)
		}
	}
	ps, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range ps {
		if data, _ := os.ReadFile(p); string(data) == "berth\x00init\x00"+id+"\x00" {
			e.t.Errorf("the init process of %s is left: %s", id, filepath.Dir(p))
		}
	}
}
