package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestExecIntoInitsOwnUserNS: a container without a user namespace in its config (runc spec)
// whose init has unshared one of its own (unshare -U, as a sandboxing tool or a nested
// runtime does). root's exec enters the container's namespaces, as runc's does, and not the
// init's user namespace: that one is the container's, it chooses its maps and members, and an
// exec that joined it kept no privilege over the container's mount namespace (exec failed:
// "becoming root in the joined user namespace", or "joining mnt namespace: operation not
// permitted" once mapped) while it was, still in the host's mount namespace, within reach of
// the container's processes.
func TestExecIntoInitsOwnUserNS(t *testing.T) {
	bundle := runcSpecBundle(t, "unshare", "-U", "sleep", "100")
	for _, bin := range []string{berthBin, "runc"} {
		t.Run(bin[strings.LastIndex(bin, "/")+1:], func(t *testing.T) {
			root := t.TempDir()
			run := func(args ...string) (string, error) {
				out, err := exec.Command(bin, append([]string{"--root", root}, args...)...).CombinedOutput()
				return string(out), err
			}
			// Not through a pipe: the detached container keeps its stdio.
			if err := exec.Command(bin, "--root", root, "run", "--detach", "--bundle", bundle, "ex-ownuserns").Run(); err != nil {
				t.Fatalf("run: %v", err)
			}
			defer run("delete", "--force", "ex-ownuserns")
			out, err := run("state", "ex-ownuserns")
			var st struct{ Pid int }
			if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Pid == 0 {
				t.Fatalf("state: %v: %s", err, out)
			}
			// Wait (from the host) until the init is in a user namespace of its own.
			host, _ := os.Readlink("/proc/self/ns/user")
			for {
				ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", st.Pid))
				if err != nil {
					t.Fatalf("the init died: %v", err)
				}
				if ns != host {
					break
				}
				runtime.Gosched()
			}
			out, err = run("exec", "ex-ownuserns", "sh", "-c", "readlink /proc/1/ns/user; readlink /proc/self/ns/user; id -u")
			if err != nil {
				t.Fatalf("exec: %v: %s", err, out)
			}
			f := strings.Fields(out)
			if len(f) != 3 || f[0] == f[1] || f[2] != "0" {
				t.Errorf("exec: %q: want the init's user namespace apart from the exec'd process's (the host's), uid 0", out)
			}
		})
	}
}
