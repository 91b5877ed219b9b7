package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// checkTerminal applies runc's rules: a detached process with a terminal needs somewhere to
// send the pty master, and a console socket is only for a detached process with a terminal.
func checkTerminal(detach, terminal bool, socket string) error {
	if detach && terminal && socket == "" {
		return errors.New("process.terminal: cannot allocate a tty for a detached container without --console-socket")
	}
	if (!detach || !terminal) && socket != "" {
		return errors.New("--console-socket: only for a detached process with process.terminal (or exec --tty)")
	}
	return nil
}

// consoleEnds is berth's side of a terminal: the connection the init sends the pty master
// on, and (foreground only) berth's end of it, where berth receives the master itself.
type consoleEnds struct {
	forInit *os.File // passed to the init
	local   *os.File // foreground: berth receives the master here
}

// openConsoleSocket connects to --console-socket (the caller listens there, as containerd's
// shim does), or for a foreground process makes a socket pair berth keeps one end of.
func openConsoleSocket(path string) (*consoleEnds, error) {
	if path != "" {
		conn, err := net.Dial("unix", path)
		if err != nil {
			return nil, fmt.Errorf("--console-socket: %w", err)
		}
		defer conn.Close()
		f, err := conn.(*net.UnixConn).File()
		if err != nil {
			return nil, err
		}
		return &consoleEnds{forInit: f}, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &consoleEnds{forInit: os.NewFile(uintptr(fds[1]), "console"), local: os.NewFile(uintptr(fds[0]), "console")}, nil
}

func (c *consoleEnds) Close() {
	if c == nil {
		return
	}
	c.forInit.Close()
	if c.local != nil {
		c.local.Close()
	}
}

// receiveMaster takes the pty master the init sent on the foreground socket pair.
func (c *consoleEnds) receiveMaster() (*os.File, error) {
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(c.local.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving the pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receiving the pty master: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receiving the pty master: no descriptor")
	}
	// Non-blocking, so that the Go poller serves it and reads can time out.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "ptmx"), nil
}

// setupConsole runs in the init (or exec) process inside the container: it opens a pty from
// the container's own devpts (/dev/ptmx), gets the peer with TIOCGPTPEER (never by its
// /dev/pts/N name, which the container could swap: CVE-2025-52565), sizes it, binds the
// peer over /dev/console when asked, and sends the master on the console socket as runc
// does: one message, the name as payload, one SCM_RIGHTS descriptor.
func setupConsole(sockFd int, size *specs.Box, mountConsole bool) (*os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process.terminal: opening /dev/ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("process.terminal: unlockpt: %w", err)
	}
	// TIOCGPTPEER takes the peer's open flags as its argument.
	peer, _, e := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		return nil, fmt.Errorf("process.terminal: TIOCGPTPEER: %w", e)
	}
	slave := os.NewFile(peer, "pty")
	n, _ := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	explain.Stepf("libcontainer.setupConsole", "open /dev/ptmx: pty /dev/pts/%d, peer by TIOCGPTPEER", n)
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			slave.Close()
			return nil, fmt.Errorf("process.consoleSize: %w", err)
		}
	}
	if mountConsole {
		if err := bindConsole(slave); err != nil {
			slave.Close()
			return nil, err
		}
	}
	explain.Stepf("libcontainer.setupConsole", "send the pty master on the console socket (SCM_RIGHTS)")
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(sockFd, []byte("/dev/ptmx"), rights, nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("--console-socket: sending the pty master: %w", err)
	}
	unix.Close(sockFd)
	return slave, nil
}

// bindConsole binds the pty peer, by descriptor, over /dev/console, created without
// following a symlink the rootfs might have put there.
func bindConsole(slave *os.File) error {
	dev, err := unix.Open("/dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("/dev/console: %w", err)
	}
	defer unix.Close(dev)
	fd, err := unix.Openat(dev, "console", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("/dev/console: %w", err)
	}
	defer unix.Close(fd)
	explain.Stepf("libcontainer.setupConsole", "mount --bind the pty peer over /dev/console")
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", slave.Fd()), fmt.Sprintf("/proc/self/fd/%d", fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("/dev/console: bind the pty: %w", err)
	}
	return nil
}

// attachConsole makes the pty the process's controlling terminal and its stdio.
func attachConsole(slave *os.File) error {
	defer slave.Close()
	// The init may already lead a session (cloned with setsid); then this is a no-op error.
	_, _ = unix.Setsid()
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("process.terminal: dup3 onto %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("process.terminal: TIOCSCTTY: %w", err)
	}
	return nil
}

// relayConsole is the foreground side of a terminal: berth's stdin goes to the pty, the
// pty's output to berth's stdout, and the caller's terminal (if stdin is one) is raw and
// passes its size on, until stop is called.
type relayConsole struct {
	master  *os.File
	restore func()
	out     sync.WaitGroup
}

func startRelay(master *os.File) *relayConsole {
	r := &relayConsole{master: master, restore: func() {}}
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		saved := *t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if unix.IoctlSetTermios(0, unix.TCSETS, &raw) == nil {
			r.restore = func() { _ = unix.IoctlSetTermios(0, unix.TCSETS, &saved) }
		}
		r.resize()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	r.out.Add(1)
	go func() {
		defer r.out.Done()
		_, _ = io.Copy(os.Stdout, master)
	}()
	return r
}

// resize gives the pty the caller's terminal size (on start and on SIGWINCH).
func (r *relayConsole) resize() {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// stop drains what the process wrote before it exited (a process left holding the pty
// cannot keep berth waiting for long), then restores the caller's terminal.
func (r *relayConsole) stop() {
	_ = r.master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	r.out.Wait()
	r.master.Close()
	r.restore()
}
