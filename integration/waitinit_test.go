package integration

// What the waiting init (berth-wait, between create and start) holds must be safe in the
// container's hands: a process exec'd into a created container with CAP_SYS_PTRACE may open
// its descriptors (/proc/1/fd/N). The directory it reopens the exec fifo through was the
// host's /proc/self/fd, and "/proc/1/fd/N/../.." was then the host's procfs: every host
// process, and through /proc/HOSTPID/root the host's filesystem (read /etc/shadow, as root).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWaitingInitHoldsNoHostProc(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "host-marker")
	if err := os.WriteFile(marker, []byte("HOSTFILE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := exec.Command("sleep", "1000")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { host.Process.Kill(); host.Wait() }()
	hostPid := strconv.Itoa(host.Process.Pid)
	// With its own /proc (runc spec's), and without one (the exec mounts one to look).
	for _, withProc := range []bool{true, false} {
		t.Run(fmt.Sprintf("proc=%v", withProc), func(t *testing.T) {
			e := newEnv(t)
			bundle := runcSpecBundle(t, "sleep", "1000")
			if !withProc {
				editRuncSpec(t, bundle, func(cfg map[string]any) {
					var kept []any
					for _, m := range cfg["mounts"].([]any) {
						if m.(map[string]any)["destination"] != "/proc" {
							kept = append(kept, m)
						}
					}
					cfg["mounts"] = kept
					l := cfg["linux"].(map[string]any)
					delete(l, "maskedPaths")
					delete(l, "readonlyPaths")
				})
			}
			const id = "waitinit"
			e.mustBerth("create", "--bundle", bundle, id)
			script := `[ -d /proc/1 ] || mount -t proc proc /proc; n=0; for f in /proc/1/fd/*; do n=$((n+1)); ` +
				`[ -e "$f/../../` + hostPid + `" ] && echo "HOSTPROC $f"; ` +
				`cat "$f/../../` + hostPid + `/root` + marker + `" 2>/dev/null; done; echo "FDS $n"`
			r := e.mustBerth("exec", "--cap", "CAP_SYS_PTRACE", "--cap", "CAP_SYS_ADMIN", id, "sh", "-c", script)
			t.Logf("inside:\n%s%s", r.stdout, r.stderr)
			if strings.Contains(r.stdout, "HOSTPROC") || strings.Contains(r.stdout, "HOSTFILE") {
				t.Errorf("the waiting init's descriptors lead to the host's /proc (host pid %s, %s):\n%s", hostPid, marker, r.stdout)
			}
			if !strings.Contains(r.stdout, "FDS ") || strings.Contains(r.stdout, "FDS 0") {
				t.Errorf("the exec did not see the init's descriptors:\n%s%s", r.stdout, r.stderr)
			}
			// The waiting init still starts through what it holds.
			e.mustBerth("start", id)
			e.waitStatus(id, "running")
			e.mustBerth("delete", "--force", id)
			e.assertGone(id)
		})
	}
}

// A user-namespaced container without a /proc mount: its private procfs for the exec fifo is
// made before pivot_root (a user namespace may mount one only while the host's whole /proc is
// in its mount namespace), and create then start work.
func TestWaitingInitUserNSWithoutProc(t *testing.T) {
	e := newEnv(t)
	bundle := runcSpecBundle(t, "sleep", "1000")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		var kept []any
		for _, m := range cfg["mounts"].([]any) {
			if d := m.(map[string]any)["destination"].(string); d != "/proc" && !strings.HasPrefix(d, "/sys") {
				kept = append(kept, m)
			}
		}
		cfg["mounts"] = kept
		l := cfg["linux"].(map[string]any)
		delete(l, "maskedPaths")
		delete(l, "readonlyPaths")
		l["namespaces"] = append(l["namespaces"].([]any), map[string]any{"type": "user"})
		m := []any{map[string]any{"containerID": 0, "hostID": 100000, "size": 65536}}
		l["uidMappings"], l["gidMappings"] = m, m
	})
	const id = "waitinit-userns"
	e.mustBerth("create", "--bundle", bundle, id)
	e.mustBerth("start", id)
	e.waitStatus(id, "running")
	e.mustBerth("delete", "--force", id)
	e.assertGone(id)
}
