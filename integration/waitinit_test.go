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
// in its mount namespace), and create then start work. With /proc bound from the host rather
// than mounted, in a pid namespace its user namespace does not own (the host's), the kernel
// refuses the private procfs (EPERM) and the fifo is reopened through the container's own
// /proc after pivot_root, a procfs it sees anyway; runc runs that config, berth failed with
// "a private procfs for the exec fifo".
func TestWaitingInitUserNSWithoutProc(t *testing.T) {
	for _, boundProc := range []bool{false, true} {
		t.Run(fmt.Sprintf("bound-proc-host-pidns=%v", boundProc), func(t *testing.T) {
			e := newEnv(t)
			bundle := runcSpecBundle(t, "sleep", "1000")
			editRuncSpec(t, bundle, func(cfg map[string]any) {
				var kept []any
				for _, m := range cfg["mounts"].([]any) {
					if d := m.(map[string]any)["destination"].(string); d != "/proc" && !strings.HasPrefix(d, "/sys") {
						kept = append(kept, m)
					}
				}
				l := cfg["linux"].(map[string]any)
				delete(l, "maskedPaths")
				delete(l, "readonlyPaths")
				var ns []any
				for _, n := range l["namespaces"].([]any) {
					if !boundProc || n.(map[string]any)["type"] != "pid" {
						ns = append(ns, n)
					}
				}
				if boundProc {
					kept = append(kept, map[string]any{"destination": "/proc", "type": "bind", "source": "/proc", "options": []any{"rbind", "nosuid", "noexec", "nodev"}})
				}
				cfg["mounts"] = kept
				l["namespaces"] = append(ns, map[string]any{"type": "user"})
				m := []any{map[string]any{"containerID": 0, "hostID": 100000, "size": 65536}}
				l["uidMappings"], l["gidMappings"] = m, m
			})
			const id = "waitinit-userns"
			e.mustBerth("create", "--bundle", bundle, id)
			e.mustBerth("start", id)
			e.waitStatus(id, "running")
			e.mustBerth("delete", "--force", id)
			e.assertGone(id)
		})
	}
}

// The waiting init holds nothing but stdio, the fifo and the directory it reopens it through,
// even under a seccomp profile written before close_range existed (which refuses it with
// ENOSYS, runc's rule for unknown calls): the init's C stage waits without an execve, so it
// closes the rest itself, one by one when close_range is refused. Its end of the init pipe is
// among them: create returns only once it is closed (it hung before).
func TestWaitingInitHoldsOnlyItsDescriptors(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("close_range-refused=%v", refuse), func(t *testing.T) {
			e := newEnv(t)
			bundle := runcSpecBundle(t, "sleep", "1000")
			if refuse {
				editRuncSpec(t, bundle, func(cfg map[string]any) {
					cfg["linux"].(map[string]any)["seccomp"] = map[string]any{
						"defaultAction": "SCMP_ACT_ALLOW",
						"syscalls": []any{map[string]any{
							"names": []any{"close_range"}, "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
						}},
					}
				})
			}
			const id = "waitfds"
			// Output to a file: the waiting init holds create's stdio (a pipe's end of file
			// would wait for the container).
			out, err := os.Create(filepath.Join(t.TempDir(), "create.out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd := exec.Command("timeout", "-s", "KILL", "30", berthBin, "--root", e.root, "create", "--bundle", bundle, id)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Run(); err != nil {
				text, _ := os.ReadFile(out.Name())
				t.Fatalf("create (killed after 30 s if it hangs): %v: %s", err, text)
			}
			defer e.berth("delete", "--force", id)
			pid := e.state(id).Pid
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				t.Fatal(err)
			}
			var held []string
			for _, f := range fds {
				n, _ := strconv.Atoi(f.Name())
				if n < 3 {
					continue
				}
				target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, n))
				held = append(held, target)
			}
			if len(held) != 2 || !strings.HasSuffix(held[0]+held[1], "exec.fifo/proc/1/fd") && !strings.HasSuffix(held[1]+held[0], "exec.fifo/proc/1/fd") {
				t.Errorf("the waiting init holds %q, want the exec fifo and /proc/1/fd only", held)
			}
			e.mustBerth("start", id)
			e.waitStatus(id, "running")
		})
	}
}
