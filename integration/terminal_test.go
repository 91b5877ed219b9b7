package integration

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// openPty opens a host pty pair for the test to play the user's terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	fd, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		t.Fatal(e)
	}
	t.Cleanup(func() { m.Close() })
	return m, os.NewFile(fd, "pty")
}

// readUntil reads f until want shows up or the time is up.
func readUntil(f *os.File, want string, d time.Duration) string {
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		b := make([]byte, 4096)
		for !strings.Contains(buf.String(), want) {
			n, err := f.Read(b)
			if err != nil {
				break
			}
			buf.Write(b[:n])
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
	return buf.String()
}

// create --console-socket: the pty master arrives as runc sends it (one message, the name
// as payload, one descriptor), consoleSize sizes it, /dev/console is the pty.
func TestConsoleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := newEnv(t, "sh", "-c", "tty; stty size; grep -c ' /dev/console ' /proc/self/mountinfo; read x; echo got $x; exit 5")
	e.spec.Process.Terminal = true
	e.spec.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	e.writeSpec()
	type recv struct {
		name   string
		master *os.File
		err    error
	}
	ch := make(chan recv, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			ch <- recv{err: err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, 128)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- recv{err: err}
			return
		}
		msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			ch <- recv{err: os.ErrInvalid}
			return
		}
		fds, _ := syscall.ParseUnixRights(&msgs[0])
		if len(fds) != 1 {
			ch <- recv{err: os.ErrInvalid}
			return
		}
		ch <- recv{name: string(buf[:n]), master: os.NewFile(uintptr(fds[0]), "master")}
	}()
	e.mustBerth("create", "--console-socket", sock, "--bundle", e.bundle, "tty-1")
	r := <-ch
	if r.err != nil || r.name == "" {
		t.Fatalf("receiving the master: %v (name %q)", r.err, r.name)
	}
	defer r.master.Close()
	e.mustBerth("start", "tty-1")
	out := readUntil(r.master, "\n1\r\n", 5*time.Second)
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "30 100") || !strings.Contains(out, "\n1\r\n") {
		t.Fatalf("inside the terminal: %q, want /dev/pts/0, size 30 100 and /dev/console mounted", out)
	}
	r.master.Write([]byte("typed\n"))
	if out := readUntil(r.master, "got typed", 5*time.Second); !strings.Contains(out, "got typed") {
		t.Errorf("input through the master: %q", out)
	}
	e.waitStatus("tty-1", "stopped")
	e.mustBerth("delete", "tty-1")

	// runc's rules: a detached terminal needs the socket, the socket needs a terminal.
	r2 := e.berth("create", "--bundle", e.bundle, "tty-2")
	if r2.code == 0 || !strings.Contains(r2.stderr, "console-socket") {
		t.Errorf("terminal without --console-socket: exit %d %q", r2.code, r2.stderr)
	}
	e.spec.Process.Terminal = false
	e.writeSpec()
	r2 = e.berth("create", "--console-socket", sock, "--bundle", e.bundle, "tty-3")
	if r2.code == 0 || !strings.Contains(r2.stderr, "--console-socket") {
		t.Errorf("--console-socket without a terminal: exit %d %q", r2.code, r2.stderr)
	}
	e.assertGone("tty-2")
	e.assertGone("tty-3")
}

// A foreground run with a terminal relays the caller's terminal: its size, its input, the
// output, and the exit status; exec --tty does the same in a running container.
func TestForegroundTerminal(t *testing.T) {
	master, slave := openPty(t)
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 42, Col: 132})
	e := newEnv(t, "sh", "-c", "stty size; read x; echo got $x; exit 3")
	e.spec.Process.Terminal = true
	e.writeSpec()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", e.bundle, "tty-run")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	if out := readUntil(master, "42 132", 5*time.Second); !strings.Contains(out, "42 132") {
		t.Fatalf("size of the caller's terminal not passed on: %q", out)
	}
	master.Write([]byte("line\r"))
	out := readUntil(master, "got line", 5*time.Second)
	err := cmd.Wait()
	if !strings.Contains(out, "got line") {
		t.Errorf("input not relayed: %q", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("exit: %v, want 3", err)
	}

	// exec --tty into a running container, foreground.
	e2 := newEnv(t, "sleep", "100")
	e2.writeSpec()
	e2.mustBerth("run", "-d", "--bundle", e2.bundle, "tty-exec")
	r := e2.berth("exec", "--tty", "tty-exec", "sh", "-c", "tty; exit 6")
	if r.code != 6 || !strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("exec --tty: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	e2.mustBerth("delete", "--force", "tty-exec")
}

// The pty belongs to the process's user, its group stays the tty group devpts gives it (runc's
// rule, tty.bats "[tty owner] ({u,g}id != 0)"), for run and exec --tty, on a runc spec bundle
// (devpts gid=5). Without a terminal, a foreground run changes the owner of the pipes it is
// given but never of the caller's files.
func TestStdioOwnedByProcessUser(t *testing.T) {
	bundle := runcSpecBundle(t, "sh", "-c", "stat -c %u:%g $(tty)")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		proc := cfg["process"].(map[string]any)
		proc["terminal"] = true
		proc["user"] = map[string]any{"uid": 1000, "gid": 100}
	})
	e := newEnv(t)
	if r := e.berth("run", "--bundle", bundle, "tty-owner"); r.code != 0 || !strings.Contains(r.stdout, "1000:5") {
		t.Errorf("run: exit %d, out %q, err %q; want the pty owned by 1000:5", r.code, r.stdout, r.stderr)
	}

	bundle2 := runcSpecBundle(t, "sleep", "100")
	e.mustBerth("run", "-d", "--bundle", bundle2, "tty-owner-exec")
	r := e.berth("exec", "--tty", "--user", "1000:100", "tty-owner-exec", "sh", "-c", "stat -c %u:%g $(tty)")
	if r.code != 0 || !strings.Contains(r.stdout, "1000:5") {
		t.Errorf("exec --tty: exit %d, out %q, err %q; want the pty owned by 1000:5", r.code, r.stdout, r.stderr)
	}
	e.mustBerth("delete", "--force", "tty-owner-exec")

	bundle3 := runcSpecBundle(t, "sh", "-c", "stat -L -c %u /proc/self/fd/0 /proc/self/fd/1")
	editRuncSpec(t, bundle3, func(cfg map[string]any) {
		cfg["process"].(map[string]any)["user"] = map[string]any{"uid": 1000, "gid": 100}
	})
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", bundle3, "stdio-owner")
	cmd.Stdin = strings.NewReader("") // a pipe
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out.Name())
	st, _ := out.Stat()
	if string(data) != "1000\n0\n" || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("stdin pipe and stdout file owned by %q inside, file by %d outside: want the pipe given to 1000, the caller's file left to 0", data, st.Sys().(*syscall.Stat_t).Uid)
	}
}
