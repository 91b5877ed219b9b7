package rawfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The same bytes and the same errors as os.ReadFile and os.WriteFile.
func TestLikeOS(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	big := make([]byte, 5000)
	for i := range big {
		big[i] = byte(i)
	}
	if err := WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p)
	if err != nil || string(got) != string(big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	for _, path := range []string{filepath.Join(dir, "none"), dir} {
		_, e1 := ReadFile(path)
		_, e2 := os.ReadFile(path)
		if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
			t.Fatalf("ReadFile(%s): %v, os: %v", path, e1, e2)
		}
	}
	e1 := WriteFile(filepath.Join(dir, "no/such"), nil, 0)
	e2 := os.WriteFile(filepath.Join(dir, "no/such"), nil, 0)
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() || !errors.Is(e1, os.ErrNotExist) {
		t.Fatalf("WriteFile: %v, os: %v", e1, e2)
	}
	// A kernel file refusing a value: the write's error, as os reports it.
	e1 = WriteFile("/proc/self/oom_score_adj", []byte("x"), 0)
	e2 = os.WriteFile("/proc/self/oom_score_adj", []byte("x"), 0)
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
		t.Fatalf("WriteFile(oom_score_adj): %v, os: %v", e1, e2)
	}
	if data, err := ReadFile("/proc/self/mountinfo"); err != nil || len(data) == 0 {
		t.Fatalf("mountinfo: %d bytes, %v", len(data), err)
	}
}
