package libcontainer

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
)

// ExecOpts are the inputs of `berth exec`.
type ExecOpts struct {
	Process       *specs.Process
	Detach        bool // hand the process over and return once it runs
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	SubCgroups    map[string]string // exec --cgroup: groups below the container's to join (cgroups.ParseSubPaths)
	// IgnorePaused lets the process join a paused (frozen) container; it runs once the
	// container is resumed.
	IgnorePaused bool
}

// CanExec says whether a process may be started in the container now, in runc's words
// when not.
func (c *Container) CanExec(ignorePaused bool) error {
	switch st := c.status(); st {
	case Created, Running:
		return nil
	case Paused:
		if ignorePaused {
			return nil
		}
		return errors.New("cannot exec in a paused container (use --ignore-paused to override)")
	default:
		return fmt.Errorf("cannot exec in a %s container", st)
	}
}

// Exec starts another process in a created or running container: a `berth init` that joins
// the container's cgroup and every namespace of its init (namespaces.ForExec), sets up the
// process as the init did (rlimits, user, capabilities, no_new_privs) and executes it. For a
// foreground exec the caller waits with Launched.Wait.
func (c *Container) Exec(o ExecOpts) (*Launched, error) {
	if err := c.CanExec(o.IgnorePaused); err != nil {
		return nil, err
	}
	if err := ValidateProcess(o.Process); err != nil {
		return nil, err
	}
	if err := validateAttrs(o.Process, nil); err != nil {
		return nil, err
	}
	if err := checkTerminal(o.Detach, o.Process.Terminal, o.ConsoleSocket); err != nil {
		return nil, err
	}
	dropUnknownCapabilities(o.Process.Capabilities)
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if len(o.SubCgroups) > 0 {
		if cg, err = cg.Sub(o.SubCgroups); err != nil {
			return nil, err
		}
	}
	spec, err := c.State.Spec()
	if err != nil {
		return nil, err
	}
	if spec == nil {
		return nil, fmt.Errorf("container %q: its state holds no config", c.ID)
	}
	plan := namespaces.ForExec(spec, c.State.Pid)
	explain.Stepf("libcontainer.Exec", "join the namespaces of init %d [%s] and its cgroup %s", c.State.Pid, strings.Join(planNames(plan), " "), cg.Path())
	l := launch{dir: c.dir, plan: plan, cg: cg, preserveFds: o.PreserveFds, attr: &syscall.SysProcAttr{}}
	if o.Process.Terminal {
		ends, err := openConsoleSocket(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer ends.Close()
		l.console = ends
	}
	xspec := execSpec(spec, o.Process)
	root := execRoot(plan, c.State.Pid)
	why := execPlanReason(xspec, plan, root)
	l.usePlan = why == ""
	if l.usePlan {
		explain.Stepf("libcontainer.Exec", "the process is set up by the init's C stage, from berth's plan: no Go runtime starts in it")
	} else {
		explain.Stepf("libcontainer.Exec", "the process is set up by the Go init (%s)", why)
	}
	first := 0
	pid, pipe, err := l.start(func(p int) { first = p })
	if err != nil {
		killIfStarted(first)
		if why := cgroups.PidsLimitHit(cg); why != "" {
			err = fmt.Errorf("%w: %s", err, why) // it could not fork, or start its threads
		}
		return nil, err
	}
	defer pipe.f.Close()
	pipe.lane, pipe.pid = explain.LaneExec, pid
	userNS := plan.Has(specs.UserNamespace)
	icfg := initConfig{
		Spec: xspec, Exec: true, Explain: explain.Enabled(), Timing: explain.Timing(),
		Detached: o.Detach, FifoFd: -1, PreserveFds: o.PreserveFds, Setgroups: true,
		NoNewKeyring: true, UserNS: userNS, ConsoleFd: l.consoleFd,
		ExecRoot: root,
	}
	if l.usePlan {
		var b []byte
		if b, err = buildPlan(&icfg, l.env, nil); err == nil {
			err = pipe.sendPlan(b)
		}
	} else {
		err = pipe.send(icfg)
	}
	if err != nil {
		killIfStarted(pid)
		return nil, fmt.Errorf("sending config to the exec process: %w", err)
	}
	pipe.onSeccomp = func(fd int) error {
		return sendSeccompListener(spec, c.specState(c.status(), pid), fd)
	}
	if _, err := relayUntilMsg(pipe, "ready"); err != nil {
		killIfStarted(pid)
		if why := cgroups.PidsLimitHit(cg); why != "" {
			err = fmt.Errorf("%w: %s", err, why) // its runtime could not start its threads
		}
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			killIfStarted(pid)
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
	}
	relay, err := goAhead(pipe, l.console, o.Detach)
	if err != nil {
		killIfStarted(pid)
		return nil, err
	}
	executed(pipe, false, o.Process.Args)
	return &Launched{Container: c, Pid: pid, relay: relay}, nil
}

// execSpec is the container's config with the exec'd process in place of its own: the init
// side reads sysctls and the like from the same type, and must find nothing to redo.
func execSpec(base *specs.Spec, p *specs.Process) *specs.Spec {
	s := &specs.Spec{Version: base.Version, Process: p, Linux: &specs.Linux{}}
	if base.Linux != nil {
		s.Linux.Seccomp = base.Linux.Seccomp
	}
	return s
}

// execRoot is where an exec'd process must chroot: nowhere when it joins the container's mount
// namespace (setns puts it at that namespace's root), the init's root otherwise.
func execRoot(p namespaces.Plan, initPid int) string {
	if p.Has(specs.MountNamespace) {
		return ""
	}
	return fmt.Sprintf("/proc/%d/root", initPid)
}

func planNames(p namespaces.Plan) []string {
	var out []string
	for _, j := range p.Join {
		out = append(out, string(j.Type))
	}
	return out
}

func killIfStarted(pid int) {
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
	}
}
