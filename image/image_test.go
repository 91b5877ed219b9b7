package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/oci"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"a/b": "a/b", "./a//b/": "a/b", "/etc/x": "etc/x", "./": "", ".": ""} {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../x", "a/../../x", "a/..", "/.."} {
		if _, err := cleanName(in); err == nil {
			t.Errorf("cleanName(%q) accepted", in)
		}
	}
}

func TestVerifier(t *testing.T) {
	data := []byte("some blob")
	d := oci.FromBytes(data)
	read := func(b []byte, size int64) error {
		v, err := newVerifier(bytes.NewReader(b), d.String(), d, size)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(v)
		return err
	}
	if err := read(data, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		b    []byte
		size int64
		want string
	}{
		"changed":   {[]byte("some blub"), int64(len(data)), "digest mismatch"},
		"truncated": {data[:4], int64(len(data)), "truncated"},
		"longer":    {append(append([]byte{}, data...), 'x'), int64(len(data)), "larger than"},
	} {
		err := read(c.b, c.size)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("%s: %v, want %q naming the blob", name, err, c.want)
		}
	}
}

type entry struct {
	h    tar.Header
	data string
}

func layerTar(t *testing.T, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := e.h
		h.Size = int64(len(e.data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	tw.Close()
	return b.Bytes()
}

func applyTo(t *testing.T, dir string, mode applyMode, blob []byte) error {
	t.Helper()
	raw := blob
	if zr, err := pgzip.NewReader(bytes.NewReader(blob)); err == nil {
		raw, _ = io.ReadAll(zr)
	} else if zd, err := zstd.NewReader(bytes.NewReader(blob)); err == nil {
		if out, err := io.ReadAll(zd); err == nil {
			raw = out
		}
		zd.Close()
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	d := oci.FromBytes(blob)
	v, _ := newVerifier(bytes.NewReader(blob), d.String(), d, int64(len(blob)))
	return applyLayer(v, d.String(), oci.FromBytes(raw), fd, mode, nil, true)
}

func TestApplyOverlayWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (devices, trusted xattrs)")
	}
	dir := t.TempDir()
	blob := layerTar(t, []entry{
		{h: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 7, Gid: 8}},
		{h: tar.Header{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o4711, Uid: 5, Gid: 6}, data: "x"},
		{h: tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "x/y/.wh.z", Typeflag: tar.TypeReg}}, // parents made implicitly
		{h: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/nowhere"}},
		{h: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "d/f"}},
		{h: tar.Header{Name: "w/", Typeflag: tar.TypeDir, Mode: 0o777}},
		{h: tar.Header{Name: "w/f", Typeflag: tar.TypeReg, Mode: 0o666}},
		{h: tar.Header{Name: "w/p", Typeflag: tar.TypeFifo, Mode: 0o666}},
	})
	// gzip it: the sniffing path
	var gz bytes.Buffer
	zw := pgzip.NewWriter(&gz)
	zw.Write(blob)
	zw.Close()
	if err := applyTo(t, dir, overlayMode, gz.Bytes()); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	for _, wh := range []string{"gone", "x/y/z"} {
		if err := unix.Lstat(filepath.Join(dir, wh), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s is not a 0/0 whiteout: %v %o", wh, err, st.Mode)
		}
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(dir, "d"), opaqueAttr(), buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("d is not opaque: %v", err)
	}
	unix.Lstat(filepath.Join(dir, "d/f"), &st)
	if st.Mode&0o7777 != 0o4711 || st.Uid != 5 || st.Gid != 6 || st.Nlink != 2 {
		t.Errorf("d/f: mode %o owner %d:%d links %d", st.Mode&0o7777, st.Uid, st.Gid, st.Nlink)
	}
	unix.Lstat(filepath.Join(dir, "d"), &st)
	if st.Mode&0o7777 != 0o750 || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("d: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	for _, p := range []string{"w", "w/f", "w/p"} {
		unix.Lstat(filepath.Join(dir, p), &st)
		if st.Mode&0o777 != 0o777 && st.Mode&0o777 != 0o666 {
			t.Errorf("%s: mode %o: the umask got in", p, st.Mode&0o7777)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dir, "l")); l != "/nowhere" {
		t.Errorf("symlink %q", l)
	}
}

func TestApplyMergeWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	lower := layerTar(t, []entry{
		{h: tar.Header{Name: "keep", Typeflag: tar.TypeReg}, data: "k"},
		{h: tar.Header{Name: "gone/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "gone/f", Typeflag: tar.TypeReg}, data: "g"},
		{h: tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "opq/old", Typeflag: tar.TypeReg}, data: "o"},
	})
	upper := layerTar(t, []entry{
		{h: tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "opq/new", Typeflag: tar.TypeReg}, data: "n"}, // before the marker
		{h: tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}},
	})
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(upper)
	zw.Close()
	if err := applyTo(t, dir, mergeMode, lower); err != nil {
		t.Fatal(err)
	}
	if err := applyTo(t, dir, mergeMode, zs.Bytes()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"keep": true, "gone": false, "opq/old": false, "opq/new": true} {
		if _, err := os.Lstat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}
}

func TestApplyRefusesEscapes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	outside := t.TempDir()
	for name, es := range map[string][]entry{
		"dotdot":   {{h: tar.Header{Name: "a/../../x", Typeflag: tar.TypeReg}}},
		"symlink":  {{h: tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: outside}}, {h: tar.Header{Name: "s/x", Typeflag: tar.TypeReg}}},
		"hardlink": {{h: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}},
		"link-dir": {{h: tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, {h: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "s/passwd"}}},
	} {
		for _, mode := range []applyMode{overlayMode, mergeMode} {
			err := applyTo(t, t.TempDir(), mode, layerTar(t, es))
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("%s (mode %d): %v, want refused", name, mode, err)
			}
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside: %v", ents)
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\nbob:x:1001:1002::/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nbob:x:1002:\nwheel:x:10:bob,root\naudio:x:29:bob\n"), 0o644)
	for in, want := range map[string]string{
		"bob":       "1001:1002 [10 29]",
		"1001":      "1001:1002 []",
		"bob:wheel": "1001:10 []",
		"bob:33":    "1001:33 []",
		"4242":      "4242:0 []",
		"4242:4243": "4242:4243 []",
	} {
		u, err := resolveUser(root, in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := fmt.Sprintf("%d:%d %v", u.UID, u.GID, u.AdditionalGids); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"nobody", "bob:nogroup"} {
		if _, err := resolveUser(root, bad); err == nil {
			t.Errorf("%s resolved", bad)
		}
	}
}

func TestSplitRef(t *testing.T) {
	dir := t.TempDir()
	lay := filepath.Join(dir, "a:b")
	os.Mkdir(lay, 0o755)
	for in, want := range map[string][2]string{
		lay:               {lay, ""},
		lay + ":x":        {lay, "x"}, // dir/a does not exist: the layout is dir/a:b
		dir + ":tag":      {dir, "tag"},
		dir + ":name:tag": {dir, "name:tag"},
	} {
		l, tag, err := SplitRef(in)
		if err != nil || l != want[0] || tag != want[1] {
			t.Errorf("SplitRef(%q) = %q, %q, %v; want %v", in, l, tag, err, want)
		}
	}
}

// TestUnpackReplacements: later layers turn a file into a directory, a directory into a file
// and a symlink into a directory; the parallel merge gives what applying in order gives.
func TestUnpackReplacements(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	lower := layerTar(t, []entry{
		{h: tar.Header{Name: "f2d", Typeflag: tar.TypeReg}, data: "file"},
		{h: tar.Header{Name: "d2f/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "d2f/x", Typeflag: tar.TypeReg}, data: "x"},
		{h: tar.Header{Name: "l2d", Typeflag: tar.TypeSymlink, Linkname: "f2d"}},
		{h: tar.Header{Name: "keep/", Typeflag: tar.TypeDir, Mode: 0o700}},
		{h: tar.Header{Name: "keep/a", Typeflag: tar.TypeReg}, data: "a"},
	})
	t1, t3 := time.Unix(1000000000, 0), time.Unix(1200000000, 0)
	lower = layerTar(t, []entry{
		{h: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t1}},
		{h: tar.Header{Name: "f2d", Typeflag: tar.TypeReg, ModTime: t1}, data: "file"},
		{h: tar.Header{Name: "d2f/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t1}},
		{h: tar.Header{Name: "d2f/x", Typeflag: tar.TypeReg, ModTime: t1}, data: "x"},
		{h: tar.Header{Name: "l2d", Typeflag: tar.TypeSymlink, Linkname: "f2d", ModTime: t1}},
		{h: tar.Header{Name: "keep/", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: t1}},
		{h: tar.Header{Name: "keep/a", Typeflag: tar.TypeReg, ModTime: t1}, data: "a"},
		{h: tar.Header{Name: "keep/c", Typeflag: tar.TypeReg, ModTime: t1}, data: "c"},
		{h: tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: t1}},
		{h: tar.Header{Name: "opq/old", Typeflag: tar.TypeReg, ModTime: t1}, data: "old"},
		{h: tar.Header{Name: "deep/a/b/", Typeflag: tar.TypeDir, Mode: 0o751, ModTime: t1}},
		{h: tar.Header{Name: "deep/a/b/f", Typeflag: tar.TypeReg, ModTime: t1}, data: "f"},
	})
	third := layerTar(t, []entry{
		{h: tar.Header{Name: "keep/.wh.a", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "opq/new", Typeflag: tar.TypeReg, ModTime: t3}, data: "new"},
		{h: tar.Header{Name: "fresh/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t3}},
		{h: tar.Header{Name: "fresh/.wh.ghost", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "fresh/o/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t3}},
		{h: tar.Header{Name: "fresh/o/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "fresh/o/z", Typeflag: tar.TypeReg, ModTime: t3}, data: "z"},
		{h: tar.Header{Name: "keep/", Typeflag: tar.TypeDir, Mode: 0o711, ModTime: t3,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}},
		{h: tar.Header{Name: "keep/h1", Typeflag: tar.TypeReg, ModTime: t3}, data: "linked"},
		{h: tar.Header{Name: "newdir/h2", Typeflag: tar.TypeLink, Linkname: "keep/h1"}},
		{h: tar.Header{Name: "deep/a/b/g", Typeflag: tar.TypeReg, ModTime: t3}, data: "g"},
		{h: tar.Header{Name: ".wh.d2f", Typeflag: tar.TypeReg}},
	})
	upper := layerTar(t, []entry{
		{h: tar.Header{Name: "f2d/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "f2d/y", Typeflag: tar.TypeReg}, data: "y"},
		{h: tar.Header{Name: "d2f", Typeflag: tar.TypeReg}, data: "now a file"},
		{h: tar.Header{Name: "l2d/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "keep/b", Typeflag: tar.TypeReg}, data: "b"}, // keep is implicit here
	})
	im := &Image{Ref: "test"}
	dir := t.TempDir()
	for i, b := range [][]byte{lower, upper, third} {
		d := oci.FromBytes(b)
		os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "blobs/sha256", d.Encoded()), b, 0o644)
		im.Layers = append(im.Layers, oci.Descriptor{MediaType: oci.MediaTypeImageLayer, Digest: d, Size: int64(len(b))})
		im.DiffIDs = append(im.DiffIDs, d)
		_ = i
	}
	im.src = dirSource{dir}
	seq, par := t.TempDir(), t.TempDir()
	if err := unpackSequential(im, seq, nil); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := unpackParallel(im, par, tmp, nil); err != nil {
		t.Fatal(err)
	}
	list := func(root string) string {
		var out []string
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			rel, _ := filepath.Rel(root, p)
			var st unix.Stat_t
			unix.Lstat(p, &st)
			data, _ := os.ReadFile(p)
			x := make([]byte, 64)
			n, _ := unix.Lgetxattr(p, "user.k", x)
			if n < 0 {
				n = 0
			}
			mtime := fmt.Sprint(st.Mtim.Sec)
			if st.Mtim.Sec > 1500000000 {
				// Made now (a parent directory no entry names): two unpacks made a
				// moment apart may straddle a second. The layers' own times are older.
				mtime = "now"
			}
			out = append(out, fmt.Sprintf("%s %o %d:%d %s links=%d %q x=%q", rel, st.Mode, st.Uid, st.Gid, mtime, st.Nlink, data, x[:n]))
			return nil
		})
		return strings.Join(out, "\n")
	}
	if a, b := list(seq), list(par); a != b {
		t.Errorf("one layer after another:\n%s\nmerged:\n%s", a, b)
	}
	var st unix.Stat_t
	if unix.Lstat(filepath.Join(par, "keep"), &st); st.Mode&0o777 != 0o711 {
		t.Errorf("keep: mode %o", st.Mode&0o777)
	}
	for p, want := range map[string]bool{"keep/a": false, "keep/c": true, "opq/old": false, "opq/new": true,
		"fresh/ghost": false, "fresh/.wh.ghost": false, "fresh/o/z": true, "d2f": false, "deep/a/b/f": true} {
		if _, err := os.Lstat(filepath.Join(par, p)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", p, err == nil, want)
		}
	}
	if n, _ := unix.Lgetxattr(filepath.Join(par, "fresh/o"), opaqueAttr(), make([]byte, 4)); n > 0 {
		t.Errorf("an opaque mark was left in the bundle")
	}
}
