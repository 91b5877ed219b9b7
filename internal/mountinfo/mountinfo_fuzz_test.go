package mountinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds the parser whole mountinfo files: real ones (testdata/seeds) and mutations.
// Nothing may panic, a parsed mount has a mount point and a filesystem type, and what Containing
// and Visible make of the result is drawn from it.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seeds/*")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "/sys/fs/cgroup/unified/x")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		mounts := parse(data)
		for _, m := range mounts {
			if m.Point == "" || m.FSType == "" {
				t.Fatalf("mount with no point or type: %+v", m)
			}
		}
		if m, ok := Containing(mounts, path); ok {
			if m.Point != "/" && path != m.Point && !strings.HasPrefix(path, m.Point+"/") {
				t.Fatalf("Containing(%q) = %q", path, m.Point)
			}
		}
		if v := Visible(mounts); len(v) > len(mounts) {
			t.Fatalf("Visible made mounts up: %d of %d", len(v), len(mounts))
		}
	})
}

// escape writes a path as the kernel does in mountinfo (octal for space, tab, newline, backslash).
func escape(s string) string {
	r := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
	return r.Replace(s)
}

// FuzzRoundTrip checks that any mount point and source, written as the kernel writes them,
// read back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add("/tmp/with space", "my src", "/")
	f.Add(`/a\040b`, `\`, "/x\ty")
	f.Fuzz(func(t *testing.T, point, source, root string) {
		if point == "" || source == "" || root == "" {
			return
		}
		line := "300 29 0:60 " + escape(root) + " " + escape(point) + " rw,relatime shared:1 - tmpfs " + escape(source) + " rw\n"
		ms := parse([]byte(line))
		if len(ms) != 1 {
			t.Fatalf("%q: %d mounts", line, len(ms))
		}
		m := ms[0]
		if m.Point != point || m.Source != source || m.Root != root || m.FSType != "tmpfs" || len(m.Optional) != 1 {
			t.Fatalf("%q: read back %+v", line, m)
		}
	})
}
