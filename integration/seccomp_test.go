package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func seccompProfile(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}, Syscalls: rules}
}

// linux.seccomp is in force in the container's process: an errno rule answers with its
// errno, a kill rule kills, with and without no_new_privs.
func TestSeccompInContainer(t *testing.T) {
	eacces := uint(13)
	for _, nnp := range []bool{true, false} {
		e := newEnv(t, "sh", "-c", "mkdir /tmp/x; echo mkdir=$?; exec chroot / true")
		e.spec.Root.Readonly = false
		e.spec.Process.NoNewPrivileges = nnp
		e.spec.Linux.Seccomp = seccompProfile(
			specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces},
			specs.LinuxSyscall{Names: []string{"chroot"}, Action: specs.ActKillProcess},
		)
		r := e.run("sc-1")
		if r.code != 128+int(syscall.SIGSYS) {
			t.Errorf("nnp=%v: exit %d, want %d (killed by SIGSYS at chroot); out %q err %q", nnp, r.code, 128+int(syscall.SIGSYS), r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr+r.stdout, "Permission denied") || strings.Contains(r.stdout, "unreachable") {
			t.Errorf("nnp=%v: out %q err %q: want mkdir refused with EACCES and nothing after chroot", nnp, r.stdout, r.stderr)
		}
	}
	// A bad profile is refused before anything is made, naming the field.
	e := newEnv(t, "true")
	e.spec.Linux.Seccomp = seccompProfile(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: "SCMP_ACT_NOPE"})
	r := e.run("sc-2")
	if r.code == 0 || !strings.Contains(r.stderr, "linux.seccomp.syscalls[0].action") {
		t.Errorf("bad action: exit %d, stderr %q", r.code, r.stderr)
	}
	e.assertGone("sc-2")
}

// SCMP_ACT_NOTIFY: the listener reaches the agent at listenerPath with the container's
// state; once the agent closes it, the notified call fails with ENOSYS.
func TestSeccompNotifyListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		st  specs.ContainerProcessState
		fds int
		err error
	}
	ch := make(chan got, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 65536), make([]byte, 1024)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{err: err}
			return
		}
		var g got
		g.err = json.Unmarshal(buf[:n], &g.st)
		msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := syscall.ParseUnixRights(&m)
			for _, fd := range fds {
				syscall.Close(fd) // the agent gives up: notified calls now fail
				g.fds++
			}
		}
		ch <- g
	}()
	e := newEnv(t, "sh", "-c", "mkdir /tmp/x; echo mkdir=$?")
	e.spec.Root.Readonly = false
	e.spec.Linux.Seccomp = seccompProfile(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify})
	e.spec.Linux.Seccomp.ListenerPath = sock
	e.spec.Linux.Seccomp.ListenerMetadata = "meta-data"
	r := e.run("sc-notify")
	g := <-ch
	if g.err != nil || g.fds != 1 {
		t.Fatalf("agent: %v, %d fds", g.err, g.fds)
	}
	if g.st.State.ID != "sc-notify" || g.st.State.Status != "creating" || g.st.Pid == 0 || g.st.Metadata != "meta-data" || len(g.st.Fds) != 1 || g.st.Fds[0] != "seccompFd" {
		t.Errorf("agent received %+v", g.st)
	}
	if !strings.Contains(r.stdout, "mkdir=1") || !strings.Contains(r.stderr+r.stdout, "not implemented") {
		t.Errorf("notified mkdir: out %q err %q, want ENOSYS once the agent is gone", r.stdout, r.stderr)
	}
}

// continueAgent is a seccomp agent on a socket that lets every notified syscall go on
// (SECCOMP_USER_NOTIF_FLAG_CONTINUE), as runc's contrib/cmd/seccompagent does with the
// calls it does not handle. It counts the listeners it got and the notifications.
type continueAgent struct {
	sock      string
	ln        *net.UnixListener
	stop      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	listeners int
	notified  int
}

func startContinueAgent(t *testing.T) *continueAgent {
	t.Helper()
	a := &continueAgent{sock: filepath.Join(t.TempDir(), "agent.sock"), stop: make(chan struct{})}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: a.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	a.ln = ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 65536), make([]byte, 1024)
			_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			c.Close()
			if err != nil {
				continue
			}
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := syscall.ParseUnixRights(&m)
				for _, fd := range fds {
					a.mu.Lock()
					a.listeners++
					a.mu.Unlock()
					a.wg.Add(1)
					go a.serve(fd)
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(a.stop)
		ln.Close()
		a.wg.Wait()
	})
	return a
}

func (a *continueAgent) serve(fd int) {
	defer a.wg.Done()
	defer unix.Close(fd)
	for {
		select {
		case <-a.stop:
			return
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR || n == 0 {
			continue
		}
		if pfd[0].Revents&unix.POLLHUP != 0 {
			return // every process of the filter is gone
		}
		var req [80]byte // struct seccomp_notif: id first
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
			continue
		}
		// struct seccomp_notif_resp: id, val, error, flags
		resp := struct {
			id    uint64
			val   int64
			error int32
			flags uint32
		}{id: *(*uint64)(unsafe.Pointer(&req[0])), flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
		a.mu.Lock()
		a.notified++
		a.mu.Unlock()
	}
}

func (a *continueAgent) counts() (listeners, notified int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.listeners, a.notified
}

// notifyProfile is the linux.seccomp runc's seccomp-notify.bats writes.
func notifyProfile(listener string, names ...string) map[string]any {
	return map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener, "listenerMetadata": "bar",
		"architectures": []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"},
		"syscalls":      []any{map[string]any{"names": names, "action": "SCMP_ACT_NOTIFY"}},
	}
}

// berthWithin runs berth and kills it if it hangs (what this test guards against).
func berthWithin(e *env, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.berthCmd(exec.CommandContext(ctx, berthBin, append([]string{"--root", e.root}, args...)...))
}

// With syscalls the runtime itself makes (execve, openat, read, close) notified, run and exec
// finish, with and without no_new_privs: berth hands the listener to the agent as soon as the
// filter is in and makes no notified syscall before (berth hung when it read files after
// installing the filter without no_new_privs).
func TestSeccompNotifyRuntimeSyscalls(t *testing.T) {
	for _, nnp := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNewPrivileges=%v", nnp), func(t *testing.T) {
			a := startContinueAgent(t)
			bundle := runcSpecBundle(t, "sleep", "100")
			editRuncSpec(t, bundle, func(cfg map[string]any) {
				cfg["process"].(map[string]any)["noNewPrivileges"] = nnp
				cfg["linux"].(map[string]any)["seccomp"] = notifyProfile(a.sock, "execve", "openat", "open", "read", "close")
			})
			e := newEnv(t)
			if r := berthWithin(e, "create", "--bundle", bundle, "sc-important"); r.code != 0 {
				t.Fatalf("create: exit %d: %s", r.code, r.stderr)
			}
			if r := berthWithin(e, "start", "sc-important"); r.code != 0 {
				t.Fatalf("start: exit %d: %s", r.code, r.stderr)
			}
			if r := berthWithin(e, "exec", "sc-important", "cat", "/proc/self/status"); r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t2") {
				t.Fatalf("exec: exit %d: out %q err %q", r.code, r.stdout, r.stderr)
			}
			berthWithin(e, "delete", "--force", "sc-important")
			if l, n := a.counts(); l != 2 || n == 0 {
				t.Errorf("the agent got %d listeners and %d notifications; want 2 (init, exec) and some", l, n)
			}
		})
	}
}

// Refused as runc refuses them: NOTIFY on write (the runtime needs write to pass the
// listener on), and a listenerPath nobody listens on; nothing is left behind.
func TestSeccompNotifyRefusals(t *testing.T) {
	for name, c := range map[string]struct{ names []string }{
		"SCMP_ACT_NOTIFY cannot be used for the write syscall": {[]string{"write"}},
		"failed to connect with seccomp agent":                 {[]string{"mkdir"}},
	} {
		bundle := runcSpecBundle(t, "true")
		editRuncSpec(t, bundle, func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["seccomp"] = notifyProfile(filepath.Join(t.TempDir(), "nobody.sock"), c.names...)
		})
		e := newEnv(t)
		r := berthWithin(e, "run", "--bundle", bundle, "sc-refused")
		if r.code == 0 || !strings.Contains(r.stderr, name) {
			t.Errorf("exit %d, stderr %q; want %q", r.code, r.stderr, name)
		}
		e.assertGone("sc-refused")
	}
}
