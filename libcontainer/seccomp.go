package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/seccomp"
)

// seccompStage installs linux.seccomp at the latest point it can (runc's order):
//
//   - without no_new_privs the kernel wants CAP_SYS_ADMIN, so before capabilities drop
//     (beforeCaps), and every later step of berth runs under the filter;
//   - otherwise just before the exec (last), or, with a NOTIFY action, before "ready"
//     (beforeReady), so that the program's first notified syscall finds the agent ready.
//
// The filter is compiled first, so what runs under it is only the install itself. A NOTIFY
// listener goes to berth at once ("seccomp" on the pipe): berth hands it to the agent, says
// "seccompDone", and only then does the init go on. Until then the init makes no syscall but
// the write of that message (so write alone may not be notified, see seccomp.Validate):
// anything else the profile notifies (openat, read, close, execve...) would wait for an agent
// that has no listener yet, and berth would hang.
type seccompStage struct {
	f    *seccomp.Filter
	nnp  bool
	done bool
	pipe *initPipe
}

func newSeccompStage(spec *specs.Spec, pipe *initPipe) (*seccompStage, error) {
	s := &seccompStage{nnp: spec.Process.NoNewPrivileges, pipe: pipe}
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return s, nil
	}
	f, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

func (s *seccompStage) beforeCaps() error {
	if !s.nnp {
		return s.install("before capabilities drop: without no_new_privs it needs CAP_SYS_ADMIN")
	}
	return nil
}

func (s *seccompStage) beforeReady() error {
	if s.f != nil && s.f.Notify() {
		return s.install("before ready: berth hands the NOTIFY listener to linux.seccomp.listenerPath")
	}
	return nil
}

func (s *seccompStage) last() error { return s.install("last step before exec") }

func (s *seccompStage) install(why string) error {
	if s.f == nil || s.done {
		return nil
	}
	explain.Stepf("libcontainer.seccompStage.install", "seccomp(SECCOMP_SET_MODE_FILTER): %d BPF instructions, flags %#x (%s)", len(s.f.Instructions()), s.f.Flags(), why)
	fd, err := s.f.Install()
	if err != nil {
		return err
	}
	s.done = true
	if fd < 0 {
		return nil
	}
	// Nothing between the install and this write: see the type's comment.
	if err := s.pipe.send(syncMsg{Type: "seccomp", SeccompFd: fd}); err != nil {
		return err
	}
	var m syncMsg
	if err := s.pipe.recv(&m); err != nil || m.Type != "seccompDone" {
		return errors.New("linux.seccomp: berth did not hand the listener to the seccomp agent")
	}
	// The agent holds its own copy now.
	return unix.Close(fd)
}

// sendSeccompListener takes the init's listener fd with pidfd_getfd (berth is root over its
// own child; the fd never crosses the JSON pipe) and gives it to the agent at listenerPath
// with the container's state.
func sendSeccompListener(spec *specs.Spec, st specs.State, fd int) error {
	sc := spec.Linux.Seccomp
	if sc.ListenerPath == "" {
		return fmt.Errorf("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener path")
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("linux.seccomp: pidfd_open %d: %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	local, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("linux.seccomp: taking the listener from the init: %w", err)
	}
	defer unix.Close(local)
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	explain.Stepf("libcontainer.sendSeccompListener", "send the seccomp listener to %s (SCM_RIGHTS) with the state", sc.ListenerPath)
	return seccomp.SendListener(sc.ListenerPath, local, data, sc.ListenerMetadata)
}
