package libcontainer

// The launch stage: a launch gathers what starting a `berth init` process takes and starts it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/namespaces"
)

// launch is what starting a `berth init` process takes, for a container's init as for a
// process exec'd into a running container.
type launch struct {
	dir         string // the container's state directory
	plan        namespaces.Plan
	cg          cgroups.Manager
	preserveFds int
	fifo        *os.File // the exec fifo (create --detach), or nil
	fifoFd      int      // set by start: the fifo's descriptor number in the init, or -1
	console     *consoleEnds
	consoleFd   int              // set by start: the console socket's number in the init, or -1
	sources     map[int]*os.File // detached mounts by mount index (mountsrc.go)
	sourceFds   map[int]int      // set by start: their numbers in the init
	attr        *syscall.SysProcAttr
	// usePlan: the init's C stage builds the container from a plan (plan.go); env is the
	// init's environment, as start made it.
	usePlan bool
	env     []string
}

// start clones the process. Its descriptors: stdio, the preserved ones, the init pipe, the
// fifo, the cgroup files it joins itself, and the namespaces its constructor enters.
// started is told the first pid, so that cleanup can kill it even if start fails later.
func (l *launch) start(started func(pid int)) (int, *initPipe, error) {
	// The caller's descriptors beyond the preserved ones must not reach the container.
	_ = unix.CloseRange(uint(3+l.preserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	parentEnd, childEnd := os.NewFile(uintptr(fds[0]), "initpipe"), os.NewFile(uintptr(fds[1]), "initpipe")
	defer childEnd.Close()

	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	for i := 0; i < l.preserveFds; i++ {
		files = append(files, os.NewFile(uintptr(3+i), "preserved"))
	}
	env := []string{envInitPipe + "=" + strconv.Itoa(len(files))}
	files = append(files, childEnd)
	l.fifoFd, l.consoleFd = -1, -1
	if l.fifo != nil {
		l.fifoFd = len(files)
		files = append(files, l.fifo)
	}
	if l.console != nil {
		l.consoleFd = len(files)
		files = append(files, l.console.forInit)
	}
	for i, f := range l.sources {
		if l.sourceFds == nil {
			l.sourceFds = map[int]int{}
		}
		l.sourceFds[i] = len(files)
		files = append(files, f)
	}
	var cgFds []string
	if dir, ok := cloneIntoDir(l.cg); ok {
		// cgroup2 (a v2 host, or a hybrid host's unified tree): clone3 puts the child
		// straight into its group (CLONE_INTO_CGROUP), without the migration a write to
		// cgroup.procs costs (an RCU grace period, ~5 ms after an idle moment).
		d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			parentEnd.Close()
			return 0, nil, fmt.Errorf("opening %s: %w", dir, err)
		}
		defer d.Close()
		explain.Stepf("libcontainer.launch.start", "clone3 CLONE_INTO_CGROUP %s (born in its cgroup: no migration)", dir)
		l.attr.UseCgroupFD, l.attr.CgroupFD = true, int(d.Fd())
	}
	for _, p := range l.cg.JoinFiles() {
		f, err := rawfile.Open(p, os.O_WRONLY, 0)
		if err != nil {
			parentEnd.Close()
			return 0, nil, fmt.Errorf("opening %s: %w", p, err)
		}
		defer f.Close()
		explain.Stepf("libcontainer.launch.start", "echo 0 > %s (written by init itself before Go starts: joins the cgroup)", p)
		cgFds = append(cgFds, strconv.Itoa(len(files)))
		files = append(files, f)
	}
	if len(cgFds) > 0 {
		env = append(env, envCgroupFds+"="+strings.Join(cgFds, ","))
	}
	ns, err := l.plan.Open()
	if err != nil {
		parentEnd.Close()
		return 0, nil, err
	}
	defer ns.Close()
	env = append(env, ns.InitEnv(len(files))...)
	if l.usePlan {
		env = append(env, envPlan+"=1")
	}
	l.env = env
	files = append(files, ns.InitFiles()...)
	exe, err := sealedExe(l.dir)
	if err != nil {
		parentEnd.Close()
		return 0, nil, err
	}
	defer exe.Close()
	// Until it is handed over, the init dies with us (a killed `create` leaves no process
	// behind): its constructor sets PR_SET_PDEATHSIG itself. Go's Pdeathsig cannot be used:
	// its check that the parent still lives kills a child cloned into an existing pid
	// namespace, where getppid() is 0.
	pid, err := cloneInit(filepath.Base(l.dir), ns, exe, files, env, l.attr)
	if err != nil {
		parentEnd.Close()
		return 0, nil, err
	}
	started(pid)
	// Our copy of the init's end goes now: should the init (or its constructor's fork) die
	// without a word, reading the pipe then ends at EOF instead of waiting for ever.
	childEnd.Close()
	if s, ok := l.cg.(interface{ LeaveGroup() }); ok {
		// systemd driver: the scope was started around berth; the init holds it now.
		s.LeaveGroup()
	}
	pipe := newInitPipe(parentEnd)
	if l.plan.WaitForMaps {
		if err := writeInitMaps(pid, l.plan, pipe); err != nil {
			parentEnd.Close()
			return 0, nil, err
		}
	}
	if l.plan.Forks() {
		if pid, err = forkedInitPid(pid, pipe); err != nil {
			parentEnd.Close()
			return 0, nil, err
		}
		started(pid)
	}
	return pid, pipe, nil
}

// cloneIntoDir is the cgroup directory a process can be cloned into directly (cgroup v2).
func cloneIntoDir(cg cgroups.Manager) (string, bool) {
	if c, ok := cg.(interface{ CloneIntoDir() (string, bool) }); ok {
		return c.CloneIntoDir()
	}
	return "", false
}
