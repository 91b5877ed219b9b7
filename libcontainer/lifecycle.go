package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/rootfs"
)

// Start lets a created container's init execute the user's program: opening the exec fifo
// for reading releases the init blocked opening it for writing.
func (c *Container) Start() error {
	// runc's words for each state.
	switch st := c.status(); st {
	case Created:
	case Stopped:
		return errors.New("cannot start a container that has stopped")
	case Running:
		return errors.New("cannot start an already running container")
	default:
		return fmt.Errorf("cannot start a container in the %s state", st)
	}
	fifo := filepath.Join(c.dir, fifoName)
	// O_NONBLOCK: a blocking open would hang forever if init died in the meantime.
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening exec fifo: %w", err)
	}
	defer unix.Close(fd)
	explain.Stepf("libcontainer.Start", "open %s: the init process stops waiting and execs the user's program", fifo)
	buf := make([]byte, 1)
	got := false
	explain.Idle() // waiting for the waiting stage's byte, then for its execve
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			got = true
			continue
		}
		if n == 0 && err == nil && got {
			break // end of file: the init's execve closed its end; the program runs
		}
		if err != nil && err != unix.EAGAIN {
			return fmt.Errorf("reading exec fifo: %w", err)
		}
		// Nothing yet: init may not have reopened its end. Wait unless it is gone.
		if !c.State.initAlive() {
			if got {
				break
			}
			return fmt.Errorf("container %q: init process exited before start", c.ID)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(pfd, 10)
	}
	if explain.Timing() {
		now := explain.Now()
		explain.In(explain.LaneWaiting, c.State.Pid, now).Idle()
		var args []string
		if spec, _ := c.State.Spec(); spec != nil && spec.Process != nil {
			args = spec.Process.Args
		}
		explain.In(explain.LaneProgram, c.State.Pid, now).Stepf("libcontainer.waitForStart", "berth-wait read start's byte and executed the user's program: %q", args)
	}
	if err := os.Remove(fifo); err != nil {
		return err
	}
	if h := c.State.hooks(); h != nil {
		warnHooks("poststart", h.Poststart, c.specState(Running, c.State.Pid), hookPlace{dir: c.HookDir})
	}
	return nil
}

// Signal sends sig to the init process, or with all to every process of the container.
func (c *Container) Signal(sig unix.Signal, all bool) error {
	st := c.status()
	// --all reaches what is left in the cgroup even once the init is gone: containerd's shim
	// relies on that to kill the orphans of a container without its own pid namespace.
	// runc's exact words: containerd's shim matches "container not running" to learn that
	// the process already finished (StopContainer, attach).
	if st == Creating || st == Stopped && !all {
		return ErrNotRunning
	}
	if all {
		return c.signalAll(sig, st == Paused)
	}
	explain.Stepf("libcontainer.Signal", "kill -%d %d", sig, c.State.Pid)
	if err := unix.Kill(c.State.Pid, sig); err != nil {
		// runc's words; containerd's shim reads "no such process" as already finished.
		return fmt.Errorf("unable to signal init: %w", err)
	}
	if sig == unix.SIGKILL && st == Paused {
		// A frozen process dies only once thawed (runc thaws too).
		if cg, err := c.cgroup(); err == nil {
			_ = cg.Thaw()
		}
	}
	return nil
}

// signalAll signals every process of the container's cgroup. The group is frozen meanwhile,
// so that no process forks past the list, and thawed again even if freezing failed half-way
// (a v1 freezer can be left FREEZING), unless the container was paused to begin with.
func (c *Container) signalAll(sig unix.Signal, paused bool) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if cgroups.IsNone(cg) {
		// Rootless without a cgroup: the processes of its pid namespace, or the init alone
		// (SIGKILL to it takes every process of its pid namespace along).
		if st := c.status(); st == Stopped || st == Creating {
			return nil
		}
		spec, _ := c.State.Spec()
		pids, ok := pidsInNamespace(c.State.Pid, spec)
		if !ok {
			pids = []int{c.State.Pid}
		}
		for _, p := range pids {
			explain.Stepf("libcontainer.signalAll", "kill -%d %d (no cgroup: by pid namespace)", sig, p)
			_ = unix.Kill(p, sig)
		}
		return nil
	}
	if sig == unix.SIGKILL {
		return cg.KillAll()
	}
	_ = cg.Freeze()
	pids, err := cg.Pids()
	for _, p := range pids {
		explain.Stepf("libcontainer.signalAll", "kill -%d %d", sig, p)
		_ = unix.Kill(p, sig)
	}
	if !paused {
		_ = cg.Thaw()
	}
	return err
}

// Delete removes a container. A running or paused one is refused unless force is set, in
// which case it is killed first.
func (c *Container) Delete(force bool) error {
	st := c.status()
	switch st {
	case Running, Paused:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.ID, st)
		}
		explain.Stepf("libcontainer.Delete", "%s container, --force: kill its init, then remove it", st)
	case Creating:
		// A create in progress must not be torn down under its feet; a dead one may.
		if c.State.CreatorPid > 0 && unix.Kill(c.State.CreatorPid, 0) == nil && !force {
			return fmt.Errorf("container %q is still being created", c.ID)
		}
		explain.Stepf("libcontainer.Delete", "container still marked creating: its berth create died or is being killed; remove what it made")
		// Only a pid that still runs a berth create is ours to kill: a crashed create's pid
		// may since belong to any process.
		if p := c.State.CreatorPid; p > 0 && p != os.Getpid() && isBerthCreate(p, c.ID) {
			_ = unix.Kill(p, unix.SIGKILL)
		}
	default:
		explain.Stepf("libcontainer.Delete", "%s container: remove its cgroup, mounts and state", st)
	}
	return c.destroy()
}

// destroy kills whatever is left of the container and removes its cgroup and state. Each
// step is idempotent, so a destroy interrupted at any point can be run again.
func (c *Container) destroy() error {
	var errs []error
	if c.State.Pid > 0 && (c.State.PidStart == 0 || c.State.initAlive()) {
		explain.Stepf("libcontainer.destroy", "kill -9 %d (init)", c.State.Pid)
		_ = unix.Kill(c.State.Pid, unix.SIGKILL)
		waitGone(c.State.Pid)
	}
	if cg, err := c.cgroup(); err == nil {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("removing cgroup: %w", err))
		}
	} else {
		errs = append(errs, err)
	}
	if c.State.HostMounts {
		if err := rootfs.UnmountHostMounts(c.State.Rootfs, c.State.HostMountTop); err != nil {
			errs = append(errs, err)
		}
	}
	if err := releaseCriuRoot(c.dir); err != nil {
		errs = append(errs, err)
	}
	if c.State.Image != "" && ReleaseImage != nil {
		if err := ReleaseImage(filepath.Dir(c.dir), c.ID, c.State.Bundle); err != nil {
			errs = append(errs, fmt.Errorf("releasing image rootfs: %w", err))
		}
	}
	if h := c.State.hooks(); h != nil && len(errs) == 0 {
		warnHooks("poststop", h.Poststop, c.specState(Stopped, 0), hookPlace{dir: c.HookDir})
	}
	if len(errs) == 0 {
		explain.Stepf("libcontainer.destroy", "rm -r %s", c.dir)
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReleaseImage undoes what the image package made for a container, its bundle (set by the
// CLI, so that libcontainer does not depend on the image store).
var ReleaseImage func(root, id, bundle string) error

// waitGone reaps pid if it is our child and otherwise waits for it to disappear.
func waitGone(pid int) {
	var ws unix.WaitStatus
	if p, _ := unix.Wait4(pid, &ws, 0, nil); p == pid {
		return
	}
	for i := 0; i < 500; i++ {
		if _, ok := processStartTime(pid); !ok {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// isBerthCreate says whether pid runs `berth ... create|run|restore ... id`.
func isBerthCreate(pid int, id string) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	if len(args) < 2 || args[len(args)-1] != id {
		return false
	}
	for _, a := range args[1:] {
		if a == "create" || a == "run" || a == "restore" {
			return true
		}
	}
	return false
}
