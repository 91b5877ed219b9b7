package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/rootfs"
)

// CreateOpts are the inputs of `berth create` and `berth run`.
type CreateOpts struct {
	Root          string
	ID            string
	Bundle        string
	Spec          *specs.Spec // already loaded from Bundle
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFds   int
	// Detach hands the init process over (it outlives berth) and holds the user's program
	// until `start`. Without it (foreground run) the program starts as soon as it is built,
	// and dies with the berth that runs it.
	Detach bool
	// Image names the OCI image the bundle was made from, if berth made it.
	Image string
}

// Launched is a container whose init process is ready: for a foreground run, Pid is our child
// and the caller waits for it.
type Launched struct {
	*Container
	Pid   int
	relay *relayConsole // a foreground terminal, relayed by Wait
}

// Create builds a container up to the point where only the exec of the user's program is
// left. On failure everything it made is undone before it returns.
func Create(o CreateOpts) (cr *Launched, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	spec := o.Spec
	plan, err := namespaces.New(spec)
	if err != nil {
		return nil, err
	}
	if err := checkTerminal(o.Detach, spec.Process.Terminal, o.ConsoleSocket); err != nil {
		return nil, err
	}
	dropUnknownCapabilities(spec.Process.Capabilities)
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return nil, fmt.Errorf("--root %s: %w", o.Root, err)
	}
	removeAbandonedDirs(o.Root)
	cgPath := ""
	if spec.Linux != nil {
		cgPath = spec.Linux.CgroupsPath
	}
	cg, err := cgroups.New(cgPath, o.ID)
	if err != nil {
		return nil, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	if err := cgroups.UseAnnotations(cg, spec.Annotations); err != nil {
		return nil, err
	}
	// Before anything exists: a refusal here leaves a pre-existing group as it was.
	if err := cgroups.CheckPreexisting(cg); err != nil {
		return nil, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	c := &Container{ID: o.ID, State: &State{
		OCIVersion: spec.Version, ID: o.ID, Bundle: o.Bundle, Rootfs: RootfsPath(spec, o.Bundle),
		Created: time.Now().UTC(), Annotations: spec.Annotations, Creating: true,
		CreatorPid: os.Getpid(), CgroupPath: cg.Path(), SystemdCgroup: cgroups.IsSystemd(cg), Image: o.Image, Config: spec,
	}}
	if !plan.Has(specs.MountNamespace) {
		c.State.HostMounts = true
		c.State.HostMountTop = rootfs.HostMountID(c.State.Rootfs)
	}
	// Recorded before the first resource exists, so that `delete --force` can always find
	// and remove whatever a create killed half-way left.
	if err := c.publishDir(o.Root); err != nil {
		return nil, err
	}
	dir := c.dir
	defer func() {
		if err != nil {
			c.destroy()
			c.Close()
		}
	}()
	if err := cg.Create(); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", cg.Path(), err)
	}
	// Limits are checked now and written once the init has joined the group and is ready
	// (as runc does): a pids.max below what the Go init's own threads need would otherwise
	// kill it.
	resources := cgroupResources(spec)
	if err := cgroups.Check(resources); err != nil {
		return nil, err
	}
	pid, pipe, console, err := c.startInit(o, plan, cg)
	if err != nil {
		return nil, err
	}
	defer console.Close()
	defer pipe.f.Close()
	pipe.onSeccomp = func(fd int) error {
		return sendSeccompListener(spec, c.specState(Creating, pid), fd)
	}
	if _, err := relayUntilMsg(pipe, "ready"); err != nil {
		if why := cgroups.PidsLimitHit(cg); why != "" {
			err = fmt.Errorf("%w: %s", err, why) // its runtime could not start its threads
		}
		return nil, err
	}
	if err := cg.Set(resources); err != nil {
		return nil, err
	}
	c.State.Pid = pid
	c.State.PidStart, _ = processStartTime(pid)
	c.State.Creating = false
	c.State.CreatorPid = 0
	if err := c.State.save(dir); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
	}
	relay, err := goAhead(pipe, console, o.Detach)
	if err != nil {
		return nil, err
	}
	if !o.Detach && spec.Hooks != nil {
		warnHooks("poststart", spec.Hooks.Poststart, c.specState(Running, pid), hookPlace{dir: o.Bundle})
	}
	return &Launched{Container: c, Pid: pid, relay: relay}, nil
}

// startInit clones the init process into its new namespaces: the berth binary again, as
// "berth init", with the init pipe, the exec fifo and the cgroup files as its descriptors.
func (c *Container) startInit(o CreateOpts, plan namespaces.Plan, cg cgroups.Manager) (int, *initPipe, *consoleEnds, error) {
	spec := o.Spec
	l := launch{dir: c.dir, plan: plan, cg: cg, preserveFds: o.PreserveFds, fifoFd: -1,
		attr: &syscall.SysProcAttr{Cloneflags: plan.CloneFlags}}
	sources, err := mountSources(spec, o.Bundle, plan)
	if err != nil {
		return 0, nil, nil, err
	}
	defer func() {
		for _, f := range sources {
			f.Close()
		}
	}()
	l.sources = sources
	if spec.Process.Terminal {
		ends, err := openConsoleSocket(o.ConsoleSocket)
		if err != nil {
			return 0, nil, nil, err
		}
		l.console = ends
	}
	if o.Detach {
		fifo := filepath.Join(c.dir, fifoName)
		// World-writable so that an init already switched to an unprivileged user can
		// still open it; only init has a handle on this directory's file.
		if err := unix.Mkfifo(fifo, 0o622); err != nil {
			return 0, nil, nil, fmt.Errorf("creating exec fifo: %w", err)
		}
		if err := os.Chmod(fifo, 0o622); err != nil {
			return 0, nil, nil, err
		}
		f, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, nil, nil, err
		}
		defer f.Close()
		l.fifo = f
	}
	setgroups := true
	if plan.CloneFlags&unix.CLONE_NEWUSER != 0 {
		l.attr.UidMappings = idMappings(spec.Linux.UIDMappings)
		l.attr.GidMappings = idMappings(spec.Linux.GIDMappings)
		l.attr.GidMappingsEnableSetgroups = true
		// Root in the new namespace before the exec of `berth init`: an exec by an
		// unmapped (hence unprivileged) uid would drop every capability.
		l.attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	explain.Stepf("libcontainer.startInit", "clone new namespaces [%s] and exec /proc/self/exe init", strings.Join(namespaces.Names(plan.CloneFlags), " "))
	pid, pipe, err := l.start(func(pid int) { c.State.Pid = pid })
	if err != nil {
		l.console.Close()
		return 0, nil, nil, err
	}
	rcfg := rootfs.Config{
		Rootfs: c.State.Rootfs, Bundle: o.Bundle, Mounts: spec.Mounts, NoPivot: o.NoPivot,
		Propagation: spec.Linux.RootfsPropagation, Devices: spec.Linux.Devices,
		MaskedPaths: spec.Linux.MaskedPaths, ReadonlyPaths: spec.Linux.ReadonlyPaths,
		HasNetNS: plan.Has(specs.NetworkNamespace), CgroupNS: plan.Has(specs.CgroupNamespace),
		UserNS: plan.Has(specs.UserNamespace), HostMountNS: !plan.Has(specs.MountNamespace),
		SourceFds: l.sourceFds,
	}
	if spec.Root != nil {
		rcfg.Readonly = spec.Root.Readonly
	}
	hookState := c.specState(Creating, pid)
	if h := spec.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime) > 0 {
		pipe.onHooks = func() error {
			if err := runHooks("prestart", h.Prestart, hookState, hookPlace{dir: o.Bundle}); err != nil {
				return err
			}
			return runHooks("createRuntime", h.CreateRuntime, hookState, hookPlace{dir: o.Bundle})
		}
	}
	err = pipe.send(initConfig{
		Spec: spec, Rootfs: rcfg, Explain: explain.Enabled(), Detached: o.Detach,
		FifoFd: l.fifoFd, PreserveFds: o.PreserveFds, Setgroups: setgroups, NoNewKeyring: o.NoNewKeyring,
		ConsoleFd: l.consoleFd, HookState: &hookState,
	})
	if err != nil {
		pipe.f.Close()
		l.console.Close()
		return 0, nil, nil, fmt.Errorf("sending config to init: %w", err)
	}
	return pid, pipe, l.console, nil
}

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
		f, err := os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC, 0)
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
	proc, err := cloneInit(filepath.Base(l.dir), ns, exe, &os.ProcAttr{Env: env, Files: files, Sys: l.attr})
	if err != nil {
		parentEnd.Close()
		return 0, nil, err
	}
	started(proc.Pid)
	if s, ok := l.cg.(interface{ LeaveGroup() }); ok {
		// systemd driver: the scope was started around berth; the init holds it now.
		s.LeaveGroup()
	}
	pipe := newInitPipe(parentEnd)
	pid := proc.Pid
	if l.plan.Forks() {
		if pid, err = forkedInitPid(proc, pipe); err != nil {
			parentEnd.Close()
			return 0, nil, err
		}
		started(pid)
	}
	return pid, pipe, nil
}

// cloneInit starts the init from an OS thread of its own. That thread first joins the
// namespaces a thread may join (namespaces.Handles.EnterThread), so it can never serve other
// goroutines again; and the init's Pdeathsig fires when the thread that cloned it exits, so
// it must outlive the init's hand-over. It therefore parks for the rest of the process.
func cloneInit(id string, ns *namespaces.Handles, exe *os.File, attr *os.ProcAttr) (*os.Process, error) {
	type result struct {
		p   *os.Process
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := ns.EnterThread(); err != nil {
			done <- result{nil, err}
			select {} // the thread is tainted: never unlock it
		}
		// The O_PATH descriptor is close-on-exec, yet still open when the child's execve
		// resolves this path.
		p, err := os.StartProcess(fmt.Sprintf("/proc/self/fd/%d", exe.Fd()), []string{"berth", "init", id}, attr)
		if err != nil {
			err = fmt.Errorf("starting init process: %w", err)
		}
		done <- result{p, err}
		select {}
	}()
	r := <-done
	return r.p, r.err
}

func idMappings(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// relayUntil passes the init's explain steps on until it sends want; an error message or the
// init's death ends the wait with an error.
func relayUntil(pipe *initPipe, want string) error {
	_, err := relayUntilMsg(pipe, want)
	return err
}

// goAhead is berth's half of dropAndHandOver: it takes the pty master of a foreground
// terminal and starts relaying it, makes sure signals are caught, says "go", and for a
// detached process waits for the hand-over and then for its exec (waitExec).
func goAhead(pipe *initPipe, console *consoleEnds, detach bool) (*relayConsole, error) {
	var relay *relayConsole
	if console != nil && console.local != nil {
		master, err := console.receiveMaster()
		if err != nil {
			return nil, err
		}
		relay = startRelay(master)
	}
	awaitSignals()
	if err := pipe.send(syncMsg{Type: "go"}); err != nil {
		if relay != nil {
			relay.stop()
		}
		return nil, fmt.Errorf("the process died before it was let go: %w", err)
	}
	if detach {
		if err := relayUntil(pipe, "handedOver"); err != nil {
			return nil, err
		}
		if err := waitExec(pipe); err != nil {
			return nil, err
		}
	}
	return relay, nil
}

// waitExec waits for the init's end of the pipe to close, which it does by its execve
// (close-on-exec): once it returns, the init is the waiting stage (or the user's program),
// which pause and kill --all can act on safely. An error the init hit on the way is returned.
func waitExec(pipe *initPipe) error {
	var m syncMsg
	if err := pipe.recv(&m); err != nil {
		return nil // end of file: executed
	}
	if m.Type == "error" {
		return errors.New(m.Msg)
	}
	return fmt.Errorf("unexpected message %q from init", m.Type)
}

// relayUntilMsg is relayUntil that returns the awaited message.
func relayUntilMsg(pipe *initPipe, want string) (syncMsg, error) {
	for {
		var m syncMsg
		if err := pipe.recv(&m); err != nil {
			return m, fmt.Errorf("init process exited before it was %s", want)
		}
		switch m.Type {
		case want:
			return m, nil
		case "hooks":
			if pipe.onHooks == nil {
				return m, errors.New("init asked for hooks berth does not have")
			}
			if err := pipe.onHooks(); err != nil {
				return m, err
			}
			if err := pipe.send(syncMsg{Type: "resume"}); err != nil {
				return m, err
			}
		case "seccomp":
			if pipe.onSeccomp == nil {
				return m, errors.New("init sent a seccomp listener berth does not expect")
			}
			if err := pipe.onSeccomp(m.SeccompFd); err != nil {
				return m, err
			}
			if err := pipe.send(syncMsg{Type: "seccompDone"}); err != nil {
				return m, err
			}
		case "step":
			explain.Stepf(m.Step, "%s", m.Msg)
		case "error":
			return m, errors.New(m.Msg)
		default:
			return m, fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}

// writePidFile writes the pid as runc does: decimal, no newline (containerd parses it with
// Atoi), to a temporary name first so a reader never sees it half-written.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cloneIntoDir is the cgroup directory a process can be cloned into directly (cgroup v2).
func cloneIntoDir(cg cgroups.Manager) (string, bool) {
	if c, ok := cg.(interface{ CloneIntoDir() (string, bool) }); ok {
		return c.CloneIntoDir()
	}
	return "", false
}

// forkedInitPid reaps the process whose constructor forked the real init and reads that
// init's pid from the pipe (namespaces.Plan.Forks).
func forkedInitPid(first *os.Process, pipe *initPipe) (int, error) {
	st, err := first.Wait()
	if err != nil {
		return 0, err
	}
	var m syncMsg
	if err := pipe.recv(&m); err != nil {
		return 0, fmt.Errorf("init process exited before it forked (%v)", st)
	}
	switch {
	case m.Type == "error":
		return 0, errors.New(m.Msg)
	case m.Type != "pid" || m.Pid <= 0:
		return 0, fmt.Errorf("unexpected message %q from init", m.Type)
	}
	explain.Stepf("libcontainer.forkedInitPid", "the init is pid %d, forked into its new pid/time namespace", m.Pid)
	return m.Pid, nil
}
