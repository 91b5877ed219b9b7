package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"getppid": unix.SYS_GETPPID, "getpgid": unix.SYS_GETPGID,
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
		{"getpgid 0", "20"},              // the same rule, second name
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
