package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

// fileWriter opens each file once and writes each value with its own write, with writeFile's
// error texts.
func TestFileWriter(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"devices.deny", "devices.allow"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := newFileWriter(dir)
	for _, v := range []string{"a", "c 1:3 rwm", "c 1:5 rwm"} {
		file := "devices.allow"
		if v == "a" {
			file = "devices.deny"
		}
		if err := w.write(file, v); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.files) != 2 {
		t.Errorf("%d files open, want 2", len(w.files))
	}
	w.close()
	// A regular file shows the writes one after the other, at the offset the one open moved.
	for f, want := range map[string]string{"devices.deny": "a", "devices.allow": "c 1:3 rwmc 1:5 rwm"} {
		if got, _ := os.ReadFile(filepath.Join(dir, f)); string(got) != want {
			t.Errorf("%s: %q, want %q", f, got, want)
		}
	}
	missing := filepath.Join(dir, "gone")
	want := writeFile(missing, "devices.allow", "a").Error()
	w = newFileWriter(missing)
	defer w.close()
	if err := w.write("devices.allow", "a"); err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
