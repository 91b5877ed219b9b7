package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListener hands a seccomp listener fd to the agent listening on listenerPath, as
// config-linux.md (linux.seccomp.listenerPath) says: it connects an AF_UNIX SOCK_STREAM
// socket, sends one container process state (specs.ContainerProcessState: ociVersion,
// fds ["seccompFd"], pid, metadata, state) as JSON in a single message carrying fd with
// SCM_RIGHTS, and closes the connection. stateJSON is the container's state (specs.State,
// as `berth state` prints it); its pid is the process state's pid. metadata is
// linux.seccomp.listenerMetadata. fd stays open: the caller closes it.
func SendListener(listenerPath string, fd int, stateJSON []byte, metadata string) error {
	var st specs.State
	if err := json.Unmarshal(stateJSON, &st); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: container state: %w", err)
	}
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{"seccompFd"},
		Pid:      st.Pid,
		Metadata: metadata,
		State:    st,
	})
	if err != nil {
		return err
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: failed to connect with seccomp agent at %s: %w", listenerPath, err)
	}
	// One sendmsg: on a stream socket the rights travel with the first byte of msg.
	n, err := unix.SendmsgN(sock, msg, unix.UnixRights(fd), nil, 0)
	for err == nil && n < len(msg) {
		var m int
		m, err = unix.Write(sock, msg[n:])
		n += m
	}
	if err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: sending the listener to %s: %w", listenerPath, err)
	}
	return nil
}
