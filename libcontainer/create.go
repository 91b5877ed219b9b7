package libcontainer

// The create stage: Create builds a container's state, cgroup and init, up to the exec of the user's program.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/wire"
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
	// WhileInitBuilds, when set, is work the container's start does not wait for (an image
	// container's bookkeeping): it runs once the init has its config, while the init builds
	// the container and berth would only wait for it. Its error fails the create.
	WhileInitBuilds func() error
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
		return nil, rootError(o.Root, err)
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
	c := &Container{ID: o.ID, State: &State{StateFields: wire.StateFields{
		OCIVersion: spec.Version, ID: o.ID, Bundle: o.Bundle, Rootfs: RootfsPath(spec, o.Bundle),
		Created: time.Now().UTC(), Annotations: spec.Annotations, Creating: true,
		CreatorPid: os.Getpid(), CgroupPath: cg.Path(), SystemdCgroup: cgroups.IsSystemd(cg), Image: o.Image,
	}, Config: spec}}
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
	if err := cgroups.CheckFor(cg, resources); err != nil {
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
	if o.WhileInitBuilds != nil {
		if err := o.WhileInitBuilds(); err != nil {
			return nil, err
		}
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
	executed(pipe, o.Detach, spec.Process.Args)
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
		// berth itself in a user namespace whose setgroups is denied (root there, as after
		// `unshare -r`): the new namespace inherits the denial, so no setgroups call.
		allow := namespaces.SetgroupsAllowed()
		l.attr.GidMappingsEnableSetgroups = allow
		// Root in the new namespace before the exec of `berth init`: an exec by an
		// unmapped (hence unprivileged) uid would drop every capability.
		l.attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !allow}
	}
	rcfg := rootfs.Config{
		Rootfs: c.State.Rootfs, Bundle: o.Bundle, Mounts: spec.Mounts, NoPivot: o.NoPivot,
		Propagation: spec.Linux.RootfsPropagation, Devices: spec.Linux.Devices,
		MaskedPaths: spec.Linux.MaskedPaths, ReadonlyPaths: spec.Linux.ReadonlyPaths,
		HasNetNS: plan.Has(specs.NetworkNamespace), CgroupNS: plan.Has(specs.CgroupNamespace),
		UserNS: plan.Has(specs.UserNamespace) || namespaces.InUserNS(), HostMountNS: !plan.Has(specs.MountNamespace),
	}
	if dir, ok := cloneIntoDir(cg); ok && plan.Has(specs.UserNamespace) {
		rcfg.CgroupDir = dir // for a cgroup2 mount refused in the user namespace
	}
	if spec.Root != nil {
		rcfg.Readonly = spec.Root.Readonly
	}
	rcfg.SourceFds = map[int]int{}
	for i := range sources {
		rcfg.SourceFds[i] = 0 // only which mounts have one matters to the check
	}
	why := planReason(spec, o, plan, &rcfg)
	l.usePlan = why == ""
	if l.usePlan {
		explain.Stepf("libcontainer.startInit", "the init builds the container in its C stage, from berth's plan: no Go runtime starts in it")
	} else {
		explain.Stepf("libcontainer.startInit", "the Go init builds the container (%s)", why)
	}
	explain.Stepf("libcontainer.startInit", "clone new namespaces [%s] and exec /proc/self/exe init", strings.Join(namespaces.Names(plan.CloneFlags), " "))
	pid, pipe, err := l.start(func(pid int) { c.State.Pid = pid })
	if err != nil {
		l.console.Close()
		return 0, nil, nil, err
	}
	pipe.lane, pipe.pid = explain.LaneInit, pid
	rcfg.SourceFds = l.sourceFds
	hookState := c.specState(Creating, pid)
	if h := spec.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime) > 0 {
		pipe.onHooks = func() error {
			if err := runHooks("prestart", h.Prestart, hookState, hookPlace{dir: o.Bundle}); err != nil {
				return err
			}
			return runHooks("createRuntime", h.CreateRuntime, hookState, hookPlace{dir: o.Bundle})
		}
	}
	icfg := initConfig{
		Spec: spec, Rootfs: rcfg, Explain: explain.Enabled(), Timing: explain.Timing(), Detached: o.Detach,
		FifoFd: l.fifoFd, PreserveFds: o.PreserveFds, Setgroups: setgroups, NoNewKeyring: o.NoNewKeyring,
		ConsoleFd: l.consoleFd, HookState: &hookState,
	}
	if l.usePlan {
		var b []byte
		if b, err = buildPlan(&icfg, l.env, cgroupDirsOf(cg)); err == nil {
			err = pipe.sendPlan(b)
		}
	} else {
		err = pipe.send(icfg)
	}
	if err != nil {
		pipe.f.Close()
		l.console.Close()
		return 0, nil, nil, fmt.Errorf("sending config to init: %w", err)
	}
	return pid, pipe, l.console, nil
}

// rootError reports a state root berth cannot use; an ordinary user is told where its state
// goes (docs/rootless.md).
func rootError(root string, err error) error {
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return fmt.Errorf("--root %s: %w (an ordinary user's state goes under $XDG_RUNTIME_DIR: set it, or --root)", root, err)
	}
	return fmt.Errorf("--root %s: %w", root, err)
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
