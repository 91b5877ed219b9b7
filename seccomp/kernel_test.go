package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The kernel tests run the test binary again as a child that installs a filter and then
// makes syscalls, printing what each returned. The parent judges the output and how the
// child ended.
const (
	envChild = "BERTH_SECCOMP_TEST_CHILD"
	envCfg   = "BERTH_SECCOMP_TEST_CFG"
	envOps   = "BERTH_SECCOMP_TEST_OPS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// Syscall numbers for the child, from x/sys rather than this package's table.
var testSyscalls = map[string]uintptr{
	"getpid": unix.SYS_GETPID, "mkdir": unix.SYS_MKDIR, "rmdir": unix.SYS_RMDIR, "lseek": unix.SYS_LSEEK,
	"socket": unix.SYS_SOCKET, "personality": unix.SYS_PERSONALITY, "umask": unix.SYS_UMASK,
	"syncfs": unix.SYS_SYNCFS, "swapoff": unix.SYS_SWAPOFF, "clone3": unix.SYS_CLONE3,
	"getppid": unix.SYS_GETPPID, "file_getattr": unix.SYS_FILE_GETATTR, "getpgid": unix.SYS_GETPGID,
	"x32_getpid": x32SyscallBit | unix.SYS_GETPID, "x32_getppid": x32SyscallBit | unix.SYS_GETPPID,
}

func child() int {
	runtime.LockOSThread()
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(envCfg)), &cfg); err != nil {
		fmt.Println("config:", err)
		return 3
	}
	// A SIGSYS kill would otherwise leave a core file behind.
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("nnp:", err)
		return 3
	}
	fd, err := Install(&cfg)
	if err != nil {
		fmt.Println("install:", err)
		return 3
	}
	fmt.Printf("installed notifyFd=%v\n", fd >= 0)
	for _, op := range strings.Split(os.Getenv(envOps), ";") {
		f := strings.Fields(op)
		switch f[0] {
		case "listener":
			st, _ := json.Marshal(specs.State{Version: specs.Version, ID: "ctr", Status: specs.StateCreating, Pid: os.Getpid(), Bundle: "/bundle"})
			if err := SendListener(f[1], fd, st, "meta=1"); err != nil {
				fmt.Println("listener:", err)
				return 3
			}
			unix.Close(fd)
			fmt.Println("listener: sent")
		case "exec":
			// The way the init process ends: the filter stays across execve.
			err := unix.Exec(f[1], f[1:], os.Environ())
			fmt.Println("exec:", err)
			return 3
		case "thread":
			// On a thread of its own, which a KILL_THREAD may end.
			done := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				r, e := sys(f[1:])
				fmt.Printf("%s: thread returned %d errno %d\n", f[1], int(r), e)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(500 * time.Millisecond):
				fmt.Printf("%s: thread gone\n", f[1])
			}
		default:
			r, e := sys(f)
			fmt.Printf("%s: %d errno %d\n", op, int(r), e)
		}
	}
	return 0
}

// sys makes syscall f[0] with arguments f[1:]: numbers, or paths (starting with /).
func sys(f []string) (uintptr, uintptr) {
	nr, ok := testSyscalls[f[0]]
	if !ok {
		panic("unknown test syscall " + f[0])
	}
	var a [6]uintptr
	var keep [][]byte
	for i, s := range f[1:] {
		if strings.HasPrefix(s, "/") {
			b := append([]byte(s), 0)
			keep = append(keep, b)
			a[i] = uintptr(unsafe.Pointer(&b[0]))
			continue
		}
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			u, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				panic(err)
			}
			v = int64(u)
		}
		a[i] = uintptr(v)
	}
	r, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	runtime.KeepAlive(keep)
	if nr == unix.SYS_SOCKET && e == 0 {
		unix.Close(int(r))
		r = 0
	}
	return r, uintptr(e)
}

type childResult struct {
	out, stderr string
	state       *os.ProcessState
}

func (c childResult) signal() syscall.Signal {
	ws := c.state.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

func runChild(t *testing.T, cfg *specs.LinuxSeccomp, ops ...string) childResult {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envCfg+"="+string(b), envOps+"="+strings.Join(ops, ";"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	r := childResult{stdout.String(), stderr.String(), cmd.ProcessState}
	t.Logf("child (%v):\n%s", cmd.ProcessState, r.out)
	if !strings.HasPrefix(r.out, "installed") {
		t.Fatalf("child did not install the filter: %s %s", r.out, r.stderr)
	}
	return r
}

// expectLines checks that each line appears in out.
func expectLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("missing %q in child output:\n%s", l, out)
		}
	}
}

func TestKernelErrno(t *testing.T) {
	dir := t.TempDir()
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.EACCES))},
			{Names: []string{"rmdir"}, Action: specs.ActErrno}, // errnoRet defaults to EPERM
			{Names: []string{"swapoff"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.ENOSYS))},
			{Names: []string{"no_such_syscall", "getppid_on_no_kernel"}, Action: specs.ActKillProcess}, // ignored
		},
	}
	r := runChild(t, cfg, "mkdir "+dir+"/a", "rmdir "+dir, "swapoff /nonexistent", "getpid")
	expectLines(t, r.out,
		"mkdir "+dir+"/a: -1 errno 13",
		"rmdir "+dir+": -1 errno 1",
		"swapoff /nonexistent: -1 errno 38",
		fmt.Sprintf("getpid: %d errno 0", r.state.Pid()))
	if _, err := os.Stat(dir + "/a"); !os.IsNotExist(err) {
		t.Errorf("mkdir ran: %v", err)
	}
}

func TestKernelArgumentComparisons(t *testing.T) {
	cfg := argsProfile()
	cfg.Syscalls = cfg.Syscalls[:len(cfg.Syscalls)-2] // without TRACE on mkdir and KILL on uname
	cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.EACCES)),
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_INET, Op: specs.OpEqualTo}}})
	// lseek on fd -1 fails with EBADF (9) unless a rule matches first.
	cases := []struct{ op, errno string }{
		{"lseek -1 0x100000000 7", "30"}, // GE 2^32 and whence 7
		{"lseek -1 0xffffffff 7", "9"},   // high word below
		{"lseek -1 0x1ffffffff 7", "30"},
		{"lseek -1 0x100000005 8", "31"}, // LE
		{"lseek -1 0x100000006 8", "9"},
		{"lseek -1 0x5 8", "31"},
		{"lseek -1 0x300000030 9", "32"}, // MASKED_EQ: (x & 0xf000000f0) == 0x300000030
		{"lseek -1 0x3123456f3 9", "9"},
		{"lseek -1 0x37777773f 9", "32"},
		{"lseek -1 0x200000000 10", "9"},  // NE
		{"lseek -1 0 10", "33"},           // low words equal, high words differ
		{"lseek -1 0x1ffffffff 11", "34"}, // LT
		{"lseek -1 0x200000000 11", "9"},
		{"lseek -1 0x200000001 12", "35"}, // GT
		{"lseek -1 0x200000000 12", "9"},
		{"lseek -1 0 4", "36"}, // whence < 5 or > 100: one index twice, OR'd
		{"lseek -1 0 101", "36"},
		{"lseek -1 0 50", "9"},
		{"umask 5", "20"}, // < 0o10 or > 0o700
		{"umask 0777", "20"},
		{"umask 022", "0"},
		{"getpgid 0", "0"},               // named by the same rule, but its unconditional LOG overrides that (as in libseccomp)
		{"personality 0xffffffff", "1"},  // EQ, errnoRet defaults to EPERM
		{"personality 0x1ffffffff", "0"}, // compared on 64 bits: not equal (the kernel then truncates it to a query)
		{"socket 2 1 0", "13"},           // AF_INET denied
		{"socket 1 1 0", "0"},            // AF_UNIX allowed
	}
	var ops []string
	for _, c := range cases {
		ops = append(ops, c.op)
	}
	r := runChild(t, cfg, ops...)
	for _, c := range cases {
		found := false
		for _, l := range strings.Split(r.out, "\n") {
			if strings.HasPrefix(l, c.op+":") {
				found = true
				if !strings.HasSuffix(l, " errno "+c.errno) {
					t.Errorf("%s: got %q, want errno %s", c.op, l, c.errno)
				}
			}
		}
		if !found {
			t.Errorf("%s: no output", c.op)
		}
	}
}

func TestKernelKillProcess(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"syncfs"}, Action: specs.ActKillProcess}}}
	r := runChild(t, cfg, "getpid", "syncfs -1", "getppid")
	if r.signal() != unix.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS", r.state)
	}
	if strings.Contains(r.out, "syncfs") || strings.Contains(r.out, "getppid") {
		t.Errorf("child went on after the killing syscall:\n%s", r.out)
	}
}

func TestKernelKillThread(t *testing.T) {
	for _, act := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillThread} {
		// TSYNC puts the filter on every thread, including the one the syscall runs on.
		cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"syncfs"}, Action: act}}}
		r := runChild(t, cfg, "thread syncfs -1", "getpid")
		if !r.state.Success() {
			t.Fatalf("%s: the process died (%v); only the thread should", act, r.state)
		}
		expectLines(t, r.out, "syncfs: thread gone", fmt.Sprintf("getpid: %d errno 0", r.state.Pid()))
	}
}

func TestKernelTrap(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"syncfs"}, Action: specs.ActTrap}}}
	r := runChild(t, cfg, "syncfs -1")
	// The Go runtime turns a SIGSYS it did not ask for into a crash that names it; sigcode 1
	// is SYS_SECCOMP, the code of a seccomp trap.
	if r.state.ExitCode() != 2 || !strings.Contains(r.stderr, "SIGSYS: bad system call") || !strings.Contains(r.stderr, "sigcode=1") {
		t.Fatalf("child ended with %v, stderr:\n%.600s", r.state, r.stderr)
	}
}

func TestKernelTraceLogAllow(t *testing.T) {
	dir := t.TempDir()
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(uint(unix.ENOTSUP)),
		Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls: []specs.LinuxSyscall{
			{Names: dockerAllowed, Action: specs.ActAllow},
			// Untraced, SECCOMP_RET_TRACE fails the syscall with ENOSYS.
			{Names: []string{"rmdir"}, Action: specs.ActTrace, ErrnoRet: u(5)},
			{Names: []string{"swapoff"}, Action: specs.ActLog},
		}}
	cfg.Syscalls[0].Names = without(dockerAllowed, "rmdir")
	r := runChild(t, cfg, "mkdir "+dir+"/a", "rmdir "+dir+"/a", "swapoff /nonexistent")
	expectLines(t, r.out, "mkdir "+dir+"/a: 0 errno 0", "rmdir "+dir+"/a: -1 errno 38", "swapoff /nonexistent: -1 errno 2")
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func TestKernelDefaultAction(t *testing.T) {
	// Docker's default profile, but failing what it does not allow with EOPNOTSUPP rather
	// than EPERM, to tell the default action from the kernel's own refusals.
	cfg := dockerProfile()
	cfg.DefaultErrnoRet = u(uint(unix.EOPNOTSUPP))
	r := runChild(t, cfg,
		"getpid",
		"swapoff /nonexistent",   // not allowed: the default
		"clone3 0 0",             // its own rule: ENOSYS
		"personality 0xffffffff", // allowed by argument
		"personality 1",          // not among the allowed personas: the default
		"socket 40 1 0",          // AF_VSOCK: its own EPERM rule, no longer the default
		"socket 1 1 0",
		"file_getattr -1 /x 0 0 0", // newer than any syscall the profile names: ENOSYS (runc's stub)
	)
	expectLines(t, r.out,
		fmt.Sprintf("getpid: %d errno 0", r.state.Pid()),
		"swapoff /nonexistent: -1 errno 95",
		"clone3 0 0: -1 errno 38",
		"personality 0xffffffff: 0 errno 0",
		"personality 1: -1 errno 95",
		"socket 40 1 0: -1 errno 1",
		"socket 1 1 0: 0 errno 0",
		"file_getattr -1 /x 0 0 0: -1 errno 38")
	if !r.state.Success() {
		t.Errorf("child: %v %s", r.state, r.stderr)
	}
}

func TestKernelArchitectures(t *testing.T) {
	// An x32 syscall (nr | __X32_SYSCALL_BIT under AUDIT_ARCH_X86_64) reaches the filter
	// whether or not the kernel has x32 built in.
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: u(42)}}}
	// x32 not in the filter: the bad-architecture action kills the thread.
	r := runChild(t, cfg, "thread x32_getpid", "getppid")
	expectLines(t, r.out, "x32_getpid: thread gone", "getppid: -1 errno 42")
	// x32 in the filter: its syscalls follow the rules by their x32 numbers.
	cfg.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	r = runChild(t, cfg, "thread x32_getppid", "getppid")
	expectLines(t, r.out, "x32_getppid: thread returned -1 errno 42", "getppid: -1 errno 42")
	r = runChild(t, cfg, "thread x32_getpid")
	if strings.Contains(r.out, "thread gone") {
		t.Errorf("x32 getpid killed with x32 in the filter:\n%s", r.out)
	}
}

// struct seccomp_notif and struct seccomp_notif_resp (linux/seccomp.h).
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// agent plays a seccomp agent on listenerPath: it receives the process state and the
// listener, lets the first notified syscall continue and fails the second with EXDEV.
func agent(l *net.UnixListener) (specs.ContainerProcessState, []seccompNotif, error) {
	var st specs.ContainerProcessState
	l.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return st, nil, err
	}
	defer conn.Close()
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return st, nil, err
	}
	rest, err := io.ReadAll(conn) // the sender closes the connection after one state
	if err != nil {
		return st, nil, err
	}
	if err := json.Unmarshal(append(buf[:n], rest...), &st); err != nil {
		return st, nil, fmt.Errorf("process state: %w", err)
	}
	scms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(scms) != 1 {
		return st, nil, fmt.Errorf("control messages: %v %v", scms, err)
	}
	fds, err := unix.ParseUnixRights(&scms[0])
	if err != nil || len(fds) != 1 {
		return st, nil, fmt.Errorf("SCM_RIGHTS: %v %v", fds, err)
	}
	fd := fds[0]
	defer unix.Close(fd)
	var seen []seccompNotif
	for i := 0; i < 2; i++ {
		var req seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
			return st, seen, fmt.Errorf("SECCOMP_IOCTL_NOTIF_RECV: %w", e)
		}
		seen = append(seen, req)
		resp := seccompNotifResp{id: req.id}
		if i == 0 {
			resp.flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
		} else {
			resp.error = -int32(unix.EXDEV)
		}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
			return st, seen, fmt.Errorf("SECCOMP_IOCTL_NOTIF_SEND: %w", e)
		}
	}
	return st, seen, nil
}

func TestKernelNotify(t *testing.T) {
	for _, flags := range [][]specs.LinuxSeccompFlag{nil, {"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagWaitKillableRecv}} {
		t.Run(fmt.Sprint(flags), func(t *testing.T) {
			dir := t.TempDir()
			sock := dir + "/agent.sock"
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "meta=1", Flags: flags,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
			type res struct {
				st   specs.ContainerProcessState
				reqs []seccompNotif
				err  error
			}
			done := make(chan res, 1)
			go func() {
				st, reqs, err := agent(l)
				done <- res{st, reqs, err}
			}()
			r := runChild(t, cfg, "listener "+sock, "mkdir "+dir+"/a", "mkdir "+dir+"/b", "getpid")
			a := <-done
			if a.err != nil {
				t.Fatal("agent: ", a.err)
			}
			pid := r.state.Pid()
			expectLines(t, r.out, "installed notifyFd=true", "listener: sent",
				"mkdir "+dir+"/a: 0 errno 0", "mkdir "+dir+"/b: -1 errno 18", fmt.Sprintf("getpid: %d errno 0", pid))
			if _, err := os.Stat(dir + "/a"); err != nil {
				t.Errorf("the continued mkdir did not run: %v", err)
			}
			if _, err := os.Stat(dir + "/b"); !os.IsNotExist(err) {
				t.Errorf("the refused mkdir ran: %v", err)
			}
			st := a.st
			if st.Version != specs.Version || len(st.Fds) != 1 || st.Fds[0] != "seccompFd" || st.Pid != pid || st.Metadata != "meta=1" ||
				st.State.ID != "ctr" || st.State.Pid != pid || st.State.Status != specs.StateCreating || st.State.Bundle != "/bundle" {
				t.Errorf("process state %+v", st)
			}
			for _, q := range a.reqs {
				if q.pid != uint32(pid) || q.nr != unix.SYS_MKDIR || q.arch != unix.AUDIT_ARCH_X86_64 {
					t.Errorf("notification %+v, want mkdir by %d", q, pid)
				}
			}
		})
	}
}

func TestKernelFilterSurvivesExec(t *testing.T) {
	dir := t.TempDir()
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.EROFS))}}}
	r := runChild(t, cfg, "exec /bin/mkdir "+dir+"/a")
	if r.state.ExitCode() != 1 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("mkdir after exec: %v, stderr %q", r.state, r.stderr)
	}
	if _, err := os.Stat(dir + "/a"); !os.IsNotExist(err) {
		t.Errorf("mkdir ran: %v", err)
	}
}
