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

// cloneInit starts the init. When the init must be cloned from a thread inside namespaces
// a thread may join (namespaces.Handles.EnterThread), that is an OS thread of its own, which
// can never serve other goroutines again; and since the init's parent-death signal fires when
// the thread that cloned it exits, that thread must outlive the init's hand-over: it parks for
// the rest of the process. Otherwise the calling goroutine's thread clones it: the Go runtime
// never ends a thread it does not hold locked, and locking one costs a thread and two
// hand-offs per scheduling of it.
func cloneInit(id string, ns *namespaces.Handles, exe *os.File, files []*os.File, env []string, sys *syscall.SysProcAttr) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	// syscall.ForkExec, not os.StartProcess: the os package's first start of a process
	// forks a throw-away child to learn whether clone(CLONE_PIDFD) works, one more process
	// per container; berth waits for its children by pid (wait4). The O_PATH descriptor is
	// close-on-exec, yet still open when the child's execve resolves this path.
	path := fmt.Sprintf("/proc/self/fd/%d", exe.Fd())
	forkExec := func() (int, error) {
		pid, err := syscall.ForkExec(path, []string{"berth", "init", id}, &syscall.ProcAttr{Env: env, Files: fds, Sys: sys})
		if err != nil {
			err = fmt.Errorf("starting init process: %w", &os.PathError{Op: "fork/exec", Path: path, Err: err})
		}
		runtime.KeepAlive(files)
		return pid, err
	}
	if !ns.ThreadBound() {
		return forkExec()
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := ns.EnterThread(); err != nil {
			done <- result{0, err}
			select {} // the thread is tainted: never unlock it
		}
		pid, err := forkExec()
		done <- result{pid, err}
		select {}
	}()
	r := <-done
	return r.pid, r.err
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
func forkedInitPid(first int, pipe *initPipe) (int, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(first, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		break
	}
	var m syncMsg
	if err := pipe.recv(&m); err != nil {
		return 0, fmt.Errorf("init process exited before it forked (%s)", waitStatusString(ws))
	}
	switch {
	case m.Type == "error":
		return 0, errors.New(m.Msg)
	case m.Type != "pid" || m.Pid <= 0:
		return 0, fmt.Errorf("unexpected message %q from init", m.Type)
	}
	explain.Stepf("libcontainer.forkedInitPid", "the init is pid %d, forked into its pid/time namespace", m.Pid)
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

// waitStatusString says how a process ended, as os.ProcessState does ("exit status 1").
func waitStatusString(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
