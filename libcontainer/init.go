package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/libcontainer/nsenter"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/rootfs"
)

// Environment variables through which `berth create` tells the init process which of its file
// descriptors are what. The user's program never sees them: it gets process.env only.
const (
	envInitPipe  = "_BERTH_INITPIPE"
	envCgroupFds = "_BERTH_CGROUP_FDS"
)

// InitMain is `berth init`: the container's first process, running the berth binary inside the
// new namespaces. It builds the container from the config sent on the init pipe, reports
// "ready", waits for "go", then (for `create`) waits on the exec fifo for `start`, and finally
// executes the user's program in its own place. It never returns.
func InitMain() {
	// Credentials, capabilities and the exec must all happen on one thread: they are
	// per-thread, and execve keeps only the calling thread's.
	runtime.LockOSThread()
	restoreStderr()
	fd, err := strconv.Atoi(os.Getenv(envInitPipe))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: must be started by berth create/run")
		os.Exit(1)
	}
	pipe := newInitPipe(os.NewFile(uintptr(fd), "initpipe"))
	if err := runInit(pipe); err != nil {
		// After "go" a foreground berth no longer reads the pipe: stderr is then the
		// witness (a detached create still reads it until the exec, see waitExec).
		if pipe.send(syncMsg{Type: "error", Msg: err.Error()}) != nil || goReceived {
			fmt.Fprintln(os.Stderr, "berth init: "+err.Error())
		}
		os.Exit(127)
	}
	panic("unreachable")
}

// restoreStderr gives back the stderr the C constructor set aside (nsenter.c,
// quietRuntimeStart) while the Go runtime started in the container's cgroup. Nothing is
// written to stderr before this.
func restoreStderr() {
	if fd := nsenter.SavedStderr(); fd > 2 {
		_ = unix.Dup3(fd, 2, 0)
		_ = unix.Close(fd)
	}
}

// goReceived is set once berth has said "go".
var goReceived bool

func runInit(pipe *initPipe) error {
	if msg := nsenter.Error(); msg != "" {
		return errors.New(msg)
	}
	// A session of its own, as runc's init and exec'd processes have (nsexec's stage 2):
	// not berth's caller's, which lies outside the container (criu refuses to dump a process
	// whose session leader is outside its pid namespace). A terminal then makes it the
	// controlling one (attachConsole).
	_, _ = unix.Setsid()
	var cfg initConfig
	if err := pipe.recv(&cfg); err != nil {
		return fmt.Errorf("reading init config: %w", err)
	}
	if cfg.Explain {
		pipe.forwardSteps()
		// Read while /proc is still the host's: in a new time namespace with an offset, the
		// init's monotonic clock is not berth's.
		explain.UseTimeNamespaceOffset()
		if cfg.Timing {
			explain.SetTiming(true)
		}
		constructor := int64(0)
		if t := nsenter.StartedAt(); t > 0 {
			constructor = explain.HostClock(t)
		}
		// First, as it began first: from the constructor's start to Go's first step (the Go
		// runtime's start is in it; bench/steps).
		explain.In("", 0, constructor).Stepf("libcontainer.runInit", "nsexec container setup, done by the nsenter constructor before Go started: %s", nsenterSummary())
		// runc's suite looks for these words in `--debug` output (debug.bats, exec.bats).
		explain.Stepf("libcontainer.runInit", "child process in init(): berth init, pid %d, has its config", os.Getpid())
	}
	// Nothing in the container may ptrace or read our memory while we still hold host
	// resources; execve makes the user's program dumpable again.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return err
	}
	sc, err := newSeccompStage(cfg.Spec, pipe)
	if err != nil {
		return err
	}
	if cfg.Exec {
		return runExec(pipe, &cfg, sc)
	}
	spec := cfg.Spec
	proc := spec.Process
	unix.Umask(0) // device nodes and mount points get exactly the modes asked for
	if proc.OOMScoreAdj != nil {
		explain.Stepf("libcontainer.runInit", "echo %d > /proc/self/oom_score_adj", *proc.OOMScoreAdj)
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj: %w", err)
		}
	}
	if err := setRlimits(proc.Rlimits); err != nil {
		return err
	}
	// The exec fifo is reopened through a /proc/self/fd directory that the waiting init keeps
	// open (fifodir.go): never the host's /proc seen here, which the container could walk up
	// from. The container's own /proc after pivot_root, or, when it mounts none, a private
	// procfs of its pid namespace made now (a user namespace may mount one only while a whole
	// procfs is in its mount namespace).
	fdDir, exe := -1, -1
	if cfg.FifoFd >= 0 {
		var err error
		if !mountsProc(spec) {
			if fdDir, err = pidFdDir(); err != nil {
				if !errors.Is(err, unix.EPERM) {
					return err
				}
				// A user namespace that does not own the pid namespace may not mount a
				// procfs of it: the container's own /proc after pivot_root serves then
				// (containerFdDir), a procfs the container sees anyway (a bind of one), or
				// the create fails there.
				fdDir = -1
			}
		}
		if exe, err = unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
	}
	cfg.Rootfs.BeforePivot = func() error {
		if h := spec.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 {
			if err := createHooks(pipe, &cfg); err != nil {
				return err
			}
		}
		// Every mount is made (and the hooks have run): a cwd on a volume lands there.
		return makeCwd(cfg.Rootfs.Rootfs, proc.Cwd)
	}
	cfg.Rootfs.AfterPivot = func() error { return setSysctls(spec.Linux.Sysctl) }
	if err := rootfs.Setup(&cfg.Rootfs); err != nil {
		return err
	}
	if err := reopenDevNull(); err != nil {
		return err
	}
	if cfg.ConsoleFd >= 0 {
		slave, err := setupConsole(cfg.ConsoleFd, proc.ConsoleSize, true)
		if err != nil {
			return err
		}
		if err := attachConsole(slave); err != nil {
			return err
		}
	}
	if err := rootfs.Finish(&cfg.Rootfs); err != nil {
		return err
	}
	if err := setHostnames(spec.Hostname, spec.Domainname); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		// A session keyring of its own keeps the host's keys out of the container's reach.
		explain.Stepf("libcontainer.runInit", "keyctl(KEYCTL_JOIN_SESSION_KEYRING, \"_ses.berth\")")
		if _, err := unix.KeyctlJoinSessionKeyring("_ses.berth"); err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("joining a new session keyring: %w (use --no-new-keyring)", err)
		}
	}
	proc.Env = withHome(proc.Env, proc.User.UID)
	path, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return err
	}
	if cfg.cwdAsUser, err = enterCwd(proc.Cwd, true); err != nil {
		return err
	}
	if err := applyContainerAttrs(spec.Linux); err != nil {
		return err
	}
	if cfg.FifoFd >= 0 && fdDir < 0 {
		if fdDir, err = containerFdDir(); err != nil {
			return err
		}
	}
	if cfg.FifoFd >= 0 {
		explain.Stepf("libcontainer.waitForStart", "execveat berth-wait: a small C stage blocks opening exec.fifo until `berth start`")
	}
	if err := dropAndHandOver(pipe, &cfg, sc, path); err != nil {
		return err
	}
	// The pipe stays open, close-on-exec (markCloexecFrom): its end of file tells berth that
	// the exec has happened, and an error before it still reaches berth.
	if err := markCloexecFrom(3 + cfg.PreserveFds); err != nil {
		return err
	}
	if err := sc.last(); err != nil {
		return err
	}
	explain.SetSink(nil) // a timeline's narration ends with the filter: nothing more through it
	if h := spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		pipe.f.Close() // berth create must not wait for `start`
		// The hooks need Go after `start`: wait here rather than in the C stage, and let
		// `start` return (and run poststart) only once they are done. They run under the
		// container's seccomp filter, in process.cwd, with process.env (runc's order).
		at := hookPlace{env: append([]string{}, proc.Env...)}
		if err := waitForStartInGo(fdDir, cfg.FifoFd, func() error {
			return runHooks("startContainer", h.StartContainer, hookState(&cfg, Created), at)
		}); err != nil {
			return err
		}
		cfg.FifoFd = -1
	}
	if cfg.FifoFd >= 0 {
		return waitForStart(exe, fdDir, cfg.FifoFd, cfg.PreserveFds, path, proc.Args, proc.Env)
	}
	return execUser(path, proc.Args, proc.Env, cfg.PreserveFds)
}

// runExec is `berth init` for `berth exec`: the C constructor has already joined the cgroup
// and the user, mount and time namespaces, and the thread that cloned us the others; the
// mount namespace's root (the container's, after its pivot_root) is our root and cwd.
func runExec(pipe *initPipe, cfg *initConfig, sc *seccompStage) error {
	proc := cfg.Spec.Process
	if cfg.ExecRoot != "" {
		explain.Stepf("libcontainer.runExec", "chroot %s (the container has no mount namespace to join)", cfg.ExecRoot)
		if err := unix.Chroot(cfg.ExecRoot); err != nil {
			return fmt.Errorf("chroot into the container's root: %w", err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	if err := setRlimits(proc.Rlimits); err != nil {
		return err
	}
	if cfg.ConsoleFd >= 0 {
		slave, err := setupConsole(cfg.ConsoleFd, proc.ConsoleSize, false)
		if err != nil {
			return err
		}
		if err := attachConsole(slave); err != nil {
			return err
		}
	}
	proc.Env = withHome(proc.Env, proc.User.UID)
	path, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return err
	}
	if cfg.cwdAsUser, err = enterCwd(proc.Cwd, true); err != nil {
		return err
	}
	if err := dropAndHandOver(pipe, cfg, sc, path); err != nil {
		return err
	}
	if err := markCloexecFrom(3 + cfg.PreserveFds); err != nil {
		return err
	}
	if err := sc.last(); err != nil {
		return err
	}
	explain.SetSink(nil) // a timeline's narration ends with the filter: nothing more through it
	return execUser(path, proc.Args, proc.Env, cfg.PreserveFds)
}

// createHooks is the init's half of the hooks before pivot_root: berth create runs prestart
// and createRuntime in the runtime's namespaces while the init waits, then the init runs
// createContainer here, in the container's namespaces (its mounts are made; the paths are
// still resolved from the host's root, and the working directory is the rootfs, as with runc).
func createHooks(pipe *initPipe, cfg *initConfig) error {
	h := cfg.Spec.Hooks
	if len(h.Prestart)+len(h.CreateRuntime) > 0 {
		explain.Idle() // berth runs them: the init waits from here
		if err := pipe.send(syncMsg{Type: "hooks"}); err != nil {
			return err
		}
		var m syncMsg
		if err := pipe.recv(&m); err != nil || m.Type != "resume" {
			return errHooks
		}
	}
	// runc runs them from the rootfs (the host's path to it) with process.env: a hook may
	// name files of the container relative to its working directory.
	at := hookPlace{dir: cfg.Rootfs.Rootfs, env: append([]string{}, cfg.Spec.Process.Env...)}
	return runHooks("createContainer", h.CreateContainer, hookState(cfg, Creating), at)
}

func hookState(cfg *initConfig, status string) specs.State {
	var st specs.State
	if cfg.HookState != nil {
		st = *cfg.HookState
	}
	st.Status = specs.ContainerState(status)
	return st
}

// waitForStartInGo blocks until `berth start` as the C stage would, for when Go must still
// run afterwards (startContainer hooks).
// Without a fifo (a foreground run) it just runs them.
func waitForStartInGo(fdDir, fifoFd int, hooks func() error) error {
	if fifoFd < 0 {
		return hooks()
	}
	// Left open, close-on-exec: `berth start` waits for the end of file the execve makes.
	fd, err := unix.Openat(fdDir, strconv.Itoa(fifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening exec fifo: %w", err)
	}
	if err := hooks(); err != nil {
		unix.Close(fd)
		return err
	}
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("writing exec fifo: %w", err)
	}
	return nil
}

// dropAndHandOver is the common end of the init and of an exec'd process: scheduler and I/O
// priority, seccomp where it must precede the drop, the drop itself (finalizeProcess), LSM
// labels, then "ready" to berth, its "go", and for a detached process the hand-over (it no
// longer dies with berth). Explain steps stop here: the pipe is berth's until the exec.
func dropAndHandOver(pipe *initPipe, cfg *initConfig, sc *seccompStage, path string) error {
	proc := cfg.Spec.Process
	if err := applyProcessAttrs(proc); err != nil {
		return err
	}
	if err := sc.beforeCaps(); err != nil {
		return err
	}
	if err := finalizeProcess(cfg); err != nil {
		return err
	}
	if err := applyLSMLabels(proc); err != nil {
		return err
	}
	if err := sc.beforeReady(); err != nil {
		return err
	}
	// The init pipe is close-on-exec like the rest: berth reads its end of file once the
	// execve succeeded. The words before the colon are what runc's suite looks for.
	done := "init: closing the pipe to signal completion"
	if cfg.Exec {
		done = "setns_init: about to exec"
	}
	explain.Stepf("libcontainer.execUser", "%s: close-on-exec every fd above %d, then execve %s %q", done, 2+cfg.PreserveFds, path, proc.Args)
	explain.Idle() // before "ready": berth may take the CPU from here on
	if err := pipe.send(syncMsg{Type: "ready"}); err != nil {
		return err
	}
	var m syncMsg
	if err := pipe.recv(&m); err != nil || m.Type != "go" {
		return fmt.Errorf("waiting for the go-ahead from berth: %v", err)
	}
	goReceived = true
	if cfg.Detached {
		// Handed over: from now on the process outlives the berth that started it.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
			return err
		}
		if err := pipe.send(syncMsg{Type: "handedOver"}); err != nil {
			return err
		}
	}
	if !cfg.Timing {
		explain.SetSink(nil) // berth no longer reads the pipe (but on a timeline, to its end)
	}
	return nil
}

// markCloexecFrom makes every descriptor from first on close-on-exec. It runs before the
// seccomp filter is installed: profiles written before close_range existed answer it with
// ENOSYS (runc's rule for unknown syscalls), and the fallback walks /proc/self/fd.
func markCloexecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("marking descriptors close-on-exec: %w", err)
	}
	names, err := d.Readdirnames(-1)
	dfd := int(d.Fd())
	for _, n := range names {
		if fd, e := strconv.Atoi(n); e == nil && fd >= first && fd != dfd {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	d.Close()
	return err
}

// finalizeProcess drops to what the user's program may have: the bounding set, the user and
// groups, capabilities, no_new_privs. Order matters: the bounding set needs CAP_SETPCAP, and
// capabilities survive setuid only with PR_SET_KEEPCAPS.
func finalizeProcess(cfg *initConfig) error {
	proc := cfg.Spec.Process
	caps := proc.Capabilities
	if caps != nil {
		if err := dropBoundingSet(caps, lastCap()); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	if err := giveStdioTo(int(proc.User.UID), cfg.ConsoleFd < 0 && !cfg.Detached); err != nil {
		return err
	}
	if err := setUser(proc.User, cfg.Setgroups); err != nil {
		return err
	}
	if cfg.cwdAsUser {
		if _, err := enterCwd(proc.Cwd, false); err != nil {
			return err
		}
	}
	if proc.User.Umask != nil {
		unix.Umask(int(*proc.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if caps != nil {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
			return err
		}
		if err := setCapabilities(caps); err != nil {
			return err
		}
	}
	if proc.NoNewPrivileges {
		explain.Stepf("libcontainer.finalizeProcess", "prctl(PR_SET_NO_NEW_PRIVS): setuid bits and file capabilities stop working")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	return nil
}

// waitForStart hands the wait for `berth start` to the small C stage in nsenter/waitexec.c:
// the berth binary executed again, which blocks on the exec fifo without a Go runtime and then
// executes the user's program. Only the fd directory and the fifo stay open across it.
func waitForStart(exe, fdDir, fifoFd, preserve int, path string, args, env []string) error {
	// These two (only) cross into the C stage; everything else is close-on-exec by now.
	for _, fd := range []int{fdDir, fifoFd} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return err
		}
	}
	argv := append([]string{"berth-wait", strconv.Itoa(fdDir), strconv.Itoa(fifoFd), strconv.Itoa(preserve), path}, args...)
	err := execveat(exe, argv, env)
	return fmt.Errorf("executing the waiting stage: %w", err)
}

// execUser replaces the init process with the user's program. Every descriptor above stdio and
// the preserved ones is marked close-on-exec first, so nothing of the host leaks in.
func execUser(path string, args, env []string, preserve int) error {
	// Done before seccomp too (markCloexecFrom); a profile may deny close_range here.
	_ = unix.CloseRange(uint(3+preserve), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	err := unix.Exec(path, args, env)
	return fmt.Errorf("process.args[0]: exec %s: %w", path, err)
}

func setHostnames(host, domain string) error {
	if host != "" {
		explain.Stepf("libcontainer.setHostnames", "sethostname %q", host)
		if err := unix.Sethostname([]byte(host)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if domain != "" {
		explain.Stepf("libcontainer.setHostnames", "setdomainname %q", domain)
		if err := unix.Setdomainname([]byte(domain)); err != nil {
			return fmt.Errorf("domainname: %w", err)
		}
	}
	return nil
}

// setSysctls writes linux.sysctl under the container's /proc/sys, resolving each name beneath
// it without following symlinks.
func setSysctls(sysctl map[string]string) error {
	if len(sysctl) == 0 {
		return nil
	}
	dir, err := unix.Open("/proc/sys", unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.sysctl: /proc/sys: %w", err)
	}
	defer unix.Close(dir)
	// Not the image's: with no procfs on /proc, a value would land in its files.
	if sfs := (unix.Statfs_t{}); unix.Fstatfs(dir, &sfs) != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("linux.sysctl: /proc/sys: not a procfs (the config mounts none on /proc)")
	}
	for k, v := range sysctl {
		rel := namespaces.SysctlPath(k)
		explain.Stepf("libcontainer.setSysctls", "echo %s > /proc/sys/%s", v, rel)
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC | unix.O_TRUNC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV})
		if err != nil {
			return fmt.Errorf("linux.sysctl[%q]: %w", k, err)
		}
		_, err = unix.Write(fd, []byte(v))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("linux.sysctl[%q]: %w", k, err)
		}
	}
	return nil
}

// nsenterSummary says what the C constructor (libcontainer/nsenter) did before the Go runtime
// started, from the variables berth gave it.
func nsenterSummary() string {
	var parts []string
	if v := os.Getenv(envCgroupFds); v != "" {
		parts = append(parts, "joined its cgroups (wrote 0 to the tasks files on fds "+v+")")
	}
	if v := os.Getenv(namespaces.EnvJoin); v != "" {
		parts = append(parts, "setns "+v)
	}
	if v := os.Getenv(namespaces.EnvUnshare); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			v = fmt.Sprintf("%#x", n)
		}
		parts = append(parts, "unshare flags "+v)
	}
	if len(parts) == 0 {
		return "nothing to do (the clone made its namespaces)"
	}
	return strings.Join(parts, "; ")
}

// reopenDevNull replaces stdio that is the null device of the host (a caller such as conmon
// gives /dev/null for a stdin it does not attach) with the container's own /dev/null, as
// runc's init does: a descriptor on a host mount is one criu cannot dump ("Can't lookup
// mount"), and the container has no business holding the host's /dev open. The container's
// /dev/null is opened without following a symlink and must be the null device (1:3).
func reopenDevNull() error {
	null := unix.Mkdev(1, 3)
	var fd = -1
	for i := 0; i < 3; i++ {
		var st unix.Stat_t
		if unix.Fstat(i, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != null {
			continue
		}
		// Checked (O_PATH) before it is opened: the image's node (no /dev mounted) could be
		// any device of the host, acting on open.
		for _, flags := range []int{unix.O_PATH, unix.O_RDWR | unix.O_NOCTTY} {
			if fd >= 0 {
				break
			}
			h, err := unix.Openat2(unix.AT_FDCWD, "/dev/null", &unix.OpenHow{
				Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Resolve: unix.RESOLVE_NO_SYMLINKS})
			if err != nil {
				return fmt.Errorf("reopening /dev/null for stdio: %w", err)
			}
			var own unix.Stat_t
			err = unix.Fstat(h, &own)
			if err == nil && (own.Mode&unix.S_IFMT != unix.S_IFCHR || own.Rdev != null) {
				err = errors.New("reopening /dev/null for stdio: the container's /dev/null is not the null device (1:3)")
			}
			if err != nil || flags == unix.O_PATH {
				unix.Close(h)
			} else {
				fd = h
				defer unix.Close(fd)
			}
			if err != nil {
				return err
			}
		}
		explain.Stepf("libcontainer.reopenDevNull", "stdio %d: the host's /dev/null replaced by the container's", i)
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("reopening /dev/null for stdio %d: %w", i, err)
		}
	}
	return nil
}
