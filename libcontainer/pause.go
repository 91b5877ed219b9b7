package libcontainer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
)

// The errors runc prints for pause and resume in the wrong state; tools match their text.
var (
	ErrNotRunning = errors.New("container not running")
	ErrNotPaused  = errors.New("container not paused")
)

// Pause freezes every process of a created or running container through its cgroup's freezer.
// Anything else, a paused container included, is "container not running", as with runc.
func (c *Container) Pause() error {
	switch st := c.status(); st {
	case Created:
		explain.Stepf("libcontainer.Pause", "created container: wait until its init is the waiting stage (a process frozen inside execve never freezes)")
		c.waitExecWait()
	case Running:
	default:
		return ErrNotRunning
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	explain.Stepf("libcontainer.Pause", "freeze cgroup %s", cg.Path())
	if err := cg.Freeze(); err != nil {
		// Never leave the group half frozen (v1 FREEZING): its processes would hang.
		_ = cg.Thaw()
		return fmt.Errorf("pausing container %q: %w", c.ID, err)
	}
	return nil
}

// waitExecWait waits (up to a second) for a created container's init to be the waiting
// stage. create can return while init is still inside execve of it, and a process frozen
// there never freezes completely: execve waits for its other threads to exit, and frozen
// threads do not (the v1 freezer then stays FREEZING).
func (c *Container) waitExecWait() {
	path := "/proc/" + strconv.Itoa(c.State.Pid) + "/cmdline"
	for i := 0; i < 1000; i++ {
		data, err := os.ReadFile(path)
		if err != nil || bytes.HasPrefix(data, []byte("berth-wait\x00")) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	switch c.status() {
	case Paused:
	case Created:
		// status() looks for the exec fifo before the freezer, so a created container that
		// was paused still reads as created: ask the freezer itself.
		if !c.paused() {
			return ErrNotPaused
		}
	default:
		return ErrNotPaused
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	explain.Stepf("libcontainer.Resume", "thaw cgroup %s", cg.Path())
	return cg.Thaw()
}

// Processes lists the host pids of every process in the container's cgroup (none once it
// has stopped and its cgroup is empty). A rootless container without a cgroup is listed by
// its pid namespace instead (pidsInNamespace).
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if cgroups.IsNone(cg) {
		if c.status() == Stopped {
			return nil, nil
		}
		spec, _ := c.State.Spec()
		if pids, ok := pidsInNamespace(c.State.Pid, spec); ok {
			return pids, nil
		}
	}
	return cg.Pids()
}

// pidsInNamespace lists the processes in the pid namespace of the container's init, when the
// container has one of its own (a shared one holds others' processes too). A process whose
// namespace cannot be read (not dumpable: a berth init at work) is left out.
func pidsInNamespace(initPid int, spec *specs.Spec) ([]int, bool) {
	own := false
	if spec != nil && spec.Linux != nil {
		for _, n := range spec.Linux.Namespaces {
			own = own || n.Type == specs.PIDNamespace && n.Path == ""
		}
	}
	if !own {
		return nil, false
	}
	ns, err := os.Readlink("/proc/" + strconv.Itoa(initPid) + "/ns/pid")
	if err != nil {
		return nil, false
	}
	explain.Stepf("libcontainer.pidsInNamespace", "no cgroup: the processes whose /proc/PID/ns/pid is %s", ns)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids, true
}
