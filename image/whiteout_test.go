package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWhiteoutDotDotRefused: ".wh..." names the directory's parent. Applied one layer after
// another (mergeMode, image unpack of an image with a hard link across layers), it deleted
// everything in the directory above the layer's root; in overlay form it was skipped
// silently. Both refuse it now, and nothing outside the root (or in it) is touched.
func TestWhiteoutDotDotRefused(t *testing.T) {
	for _, name := range []string{".wh...", "sub/.wh..."} {
		for _, mode := range []applyMode{mergeMode, overlayMode} {
			top := t.TempDir()
			victim := filepath.Join(top, "victim")
			if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(top, "rootfs")
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "lower"), []byte("lower\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			tw.Close()
			err := applyTo(t, dir, mode, b.Bytes())
			if !errors.Is(err, errRefused) {
				t.Errorf("%s (mode %d): %v, want it refused", name, mode, err)
			}
			for _, p := range []string{victim, filepath.Join(dir, "lower")} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s (mode %d): %s was deleted: %v", name, mode, p, err)
				}
			}
		}
	}
}
