package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// TestRootlessImageExecIntoInitsOwnUserNS: the same for an ordinary user's run --image
// container, made in a user namespace its config does not list: exec joins the namespace the
// container was made in (the owner of the init's pid namespace), not the one its init
// unshared since (which maps nothing, and owns none of the container's namespaces: exec
// failed, "becoming root in the joined user namespace").
func TestRootlessImageExecIntoInitsOwnUserNS(t *testing.T) {
	u := rlImageEnsureUser(t, "berth-rlimage", true, true)
	base := rlImageLayout(t, u) + ":base"
	if r := u.berth(t, "run", "-d", "--image", base, "rl-ownuserns", "unshare", "-U", "sleep", "100"); r.code != 0 {
		t.Fatalf("run -d: %+v", r)
	}
	defer u.berth(t, "delete", "--force", "rl-ownuserns")
	r := u.berth(t, "state", "rl-ownuserns")
	var st struct{ Pid int }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Pid == 0 {
		t.Fatalf("state: %+v", r)
	}
	// Wait (from the host) until the init is in a user namespace other than the one that
	// owns its pid namespace.
	for {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", st.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("the init died: %v", err)
		}
		owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		var a, b unix.Stat_t
		unix.Fstat(owner, &a)
		unix.Close(owner)
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/user", st.Pid), &b); err != nil {
			t.Fatalf("the init died: %v", err)
		}
		if a.Ino != b.Ino {
			break
		}
		runtime.Gosched()
	}
	r = u.berth(t, "exec", "rl-ownuserns", "sh", "-c", "readlink /proc/1/ns/user; readlink /proc/self/ns/user; id -u")
	f := strings.Fields(r.stdout)
	if r.code != 0 || len(f) != 3 || f[0] == f[1] || f[2] != "0" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q: want it in the user namespace the container was made in, uid 0", r.code, r.stdout, r.stderr)
	}
	if r := u.berth(t, "delete", "--force", "rl-ownuserns"); r.code != 0 {
		t.Errorf("delete: %+v", r)
	}
	rlImageNothingLeft(t, u, "rl-ownuserns")
}
