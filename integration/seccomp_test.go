package integration

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
