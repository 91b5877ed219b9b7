package image

import (
	"archive/tar"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// useUserMarks makes this test process write and mount the store as an ordinary user's is
// (user.overlay.* marks, userxattr), whatever its user namespace.
func useUserMarks(t *testing.T, xattrWhiteouts bool) {
	nsOnce.Do(func() {})
	saved, savedX := userMarks, forceXwhiteout
	userMarks, forceXwhiteout = true, xattrWhiteouts
	t.Cleanup(func() { userMarks, forceXwhiteout = saved, savedX })
}

// TestUserMarksOverlay applies two layers as an ordinary user's store does and mounts them
// with userxattr: the merged tree must be the image's, with 0/0 whiteouts and with the xattr
// form the store falls back to when the kernel refuses the device.
func TestUserMarksOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount)")
	}
	lower := layerTar(t, []entry{
		{h: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "d/a", Typeflag: tar.TypeReg}, data: "a"},
		{h: tar.Header{Name: "d/b", Typeflag: tar.TypeReg}, data: "b"},
		{h: tar.Header{Name: "d/keep", Typeflag: tar.TypeReg}, data: "k"},
		{h: tar.Header{Name: "o/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "o/c", Typeflag: tar.TypeReg}, data: "c"},
		{h: tar.Header{Name: "p/", Typeflag: tar.TypeDir, Mode: 0o755}},
		{h: tar.Header{Name: "p/q", Typeflag: tar.TypeReg}, data: "q"},
	})
	upper := layerTar(t, []entry{
		{h: tar.Header{Name: "d/.wh.a", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "d/.wh.b", Typeflag: tar.TypeReg}},
		// a whiteout before the opaque marker of its directory: it must not show
		{h: tar.Header{Name: "p/.wh.q", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "p/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "o/.wh..wh..opq", Typeflag: tar.TypeReg}},
		{h: tar.Header{Name: "o/e", Typeflag: tar.TypeReg, PAXRecords: map[string]string{
			"SCHILY.xattr.trusted.x": "1", "SCHILY.xattr.user.x": "2"}}, data: "e"},
	})
	for _, xw := range []bool{false, true} {
		t.Run(map[bool]string{false: "device-whiteouts", true: "xattr-whiteouts"}[xw], func(t *testing.T) {
			useUserMarks(t, xw)
			dir := t.TempDir()
			var dirs []string
			for i, blob := range [][]byte{lower, upper} {
				d := filepath.Join(dir, "l"+string(rune('0'+i)))
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := applyTo(t, d, overlayMode, blob); err != nil {
					t.Fatal(err)
				}
				dirs = append([]string{d}, dirs...)
			}
			l1 := dirs[0]
			var st unix.Stat_t
			unix.Lstat(filepath.Join(l1, "d/a"), &st)
			if isDev := st.Mode&unix.S_IFMT == unix.S_IFCHR; isDev == xw || !isWhiteout(filepath.Join(l1, "d/a"), &st) {
				t.Errorf("d/a: mode %o, want a whiteout (xattr form: %v)", st.Mode, xw)
			}
			if v := xattrValue(filepath.Join(l1, "o"), "user.overlay.opaque"); v != "y" {
				t.Errorf("o: user.overlay.opaque %q, want y", v)
			}
			if v := xattrValue(filepath.Join(l1, "o"), "trusted.overlay.opaque"); v != "" {
				t.Errorf("o: trusted.overlay.opaque %q set in a store of user marks", v)
			}
			if v := xattrValue(filepath.Join(l1, "o/e"), "trusted.x"); v != "" {
				t.Errorf("o/e: trusted.x from the tar was set in a store of user marks")
			}
			m, up, wk := filepath.Join(dir, "m"), filepath.Join(dir, "up"), filepath.Join(dir, "wk")
			for _, d := range []string{m, up, wk} {
				os.Mkdir(d, 0o755)
			}
			if err := mountOverlay(m, dirs, up, wk); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(m, unix.MNT_DETACH)
			var got []string
			filepath.Walk(m, func(p string, fi os.FileInfo, err error) error {
				if err == nil && p != m {
					got = append(got, strings.TrimPrefix(p, m+"/"))
				}
				return nil
			})
			sort.Strings(got)
			if want := "d d/keep o o/e p"; strings.Join(got, " ") != want {
				t.Errorf("merged tree %q, want %q", strings.Join(got, " "), want)
			}
			if v := xattrValue(filepath.Join(m, "o/e"), "user.x"); v != "2" {
				t.Errorf("o/e: user.x %q, want 2", v)
			}
		})
	}
}
