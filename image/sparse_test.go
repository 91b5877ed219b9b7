package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSparseFileStaysSparse: a sparse file of a layer (GNU tar --sparse, old GNU and PAX
// formats) is written with its holes: a tar of a few KiB declaring 256 MiB costs a few
// blocks, not 256 MiB of zeros on the store's disk.
func TestSparseFileStaysSparse(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("needs GNU tar")
	}
	src := t.TempDir()
	big := filepath.Join(src, "big")
	const size = 256 << 20
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("middle"), 100<<20)
	f.Close()
	for _, format := range []string{"gnu", "posix"} {
		out, err := exec.Command("tar", "--sparse", "--format="+format, "-C", src, "-cf", "-", "big").Output()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 64<<10 {
			t.Fatalf("tar --sparse made %d bytes: not sparse", len(out))
		}
		for _, mode := range []applyMode{overlayMode, mergeMode} {
			dir := t.TempDir()
			if err := applyTo(t, dir, mode, out); err != nil {
				t.Fatalf("%s, mode %d: %v", format, mode, err)
			}
			p := filepath.Join(dir, "big")
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != size || st.Blocks*512 > 1<<20 {
				t.Errorf("%s, mode %d: size %d (want %d), %d bytes on disk: holes written as zeros", format, mode, st.Size, size, st.Blocks*512)
			}
			got := make([]byte, 6)
			g, _ := os.Open(p)
			g.ReadAt(got, 100<<20)
			g.Close()
			if string(got) != "middle" {
				t.Errorf("%s, mode %d: data at 100 MiB %q", format, mode, got)
			}
		}
	}
}
