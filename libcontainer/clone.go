package libcontainer

// The clone stage: the init is cloned from a thread of its own, into its namespaces.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
)

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

// writeInitMaps writes the maps of the user namespace the init's constructor has just made
// (rootless: namespaces.Plan.WaitForMaps) when it asks, then lets it go on. On failure the
// init is still waiting; the caller's cleanup kills it, and its namespace goes with it.
func writeInitMaps(pid int, plan namespaces.Plan, pipe *initPipe) error {
	var m syncMsg
	if err := pipe.recv(&m); err != nil {
		return fmt.Errorf("init process exited before it asked for its user namespace's maps: %w", err)
	}
	switch {
	case m.Type == "error":
		return errors.New(m.Msg)
	case m.Type != "maps":
		return fmt.Errorf("unexpected message %q from init", m.Type)
	}
	if err := namespaces.WriteIDMaps(pid, plan.UIDMappings, plan.GIDMappings); err != nil {
		return err
	}
	return pipe.send(syncMsg{Type: "mapped"})
}
