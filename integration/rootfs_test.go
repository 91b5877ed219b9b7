package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A read-only tmpfs (a "ro" /dev, as runc's issue 3248) with mounts below it: the mount points
// and device nodes are made before it becomes read-only, as with runc, and it is read-only
// inside the container.
func TestReadonlyTmpfsWithMountsBelow(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("bound\n"), 0o644)
	e := newEnv(t)
	e.spec = runcSpec(t, "sh", "-c", `grep -E '^tmpfs /(dev|data) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1
ls /dev/pts/ptmx /dev/null; cat /data/sub/f
touch /dev/x 2>/dev/null && echo WROTE-DEV; touch /data/x 2>/dev/null && echo WROTE-DATA; true`)
	for i, m := range e.spec.Mounts {
		if m.Destination == "/dev" {
			e.spec.Mounts[i].Options = append(m.Options, "ro")
		}
	}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nosuid"}},
		specs.Mount{Destination: "/data/sub", Type: "bind", Source: src, Options: []string{"bind", "ro"}})
	r := e.run("ro-dev")
	want := "/dev ro\n/data ro\n/dev/null\n/dev/pts/ptmx\nbound\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, out %q, want %q; err %q", r.code, r.stdout, want, r.stderr)
	}
	if strings.Contains(r.stdout, "WROTE") {
		t.Errorf("a read-only tmpfs was written to")
	}
}
