//go:build cgo

package sigrelay

// #cgo CFLAGS: -Wall -O2
// int berthRelaySignals(int fd, const int *sigs, int n);
import "C"

import (
	"fmt"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Relay is the read end of the caught signals.
type Relay struct {
	fd int
}

// Catch starts holding every forwarded signal and SIGCHLD; they are armed when it returns.
func Catch() (*Relay, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("a pipe for signals: %w", err)
	}
	// Go's own writes to stdout and stderr must not die of SIGPIPE once the runtime's
	// handler for it is gone: marked ignored first (no round trip), then taken over.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make([]C.int, 0, 64)
	for _, s := range caught() {
		sigs = append(sigs, C.int(s))
	}
	if errno := C.berthRelaySignals(C.int(fds[1]), (*C.int)(unsafe.Pointer(&sigs[0])), C.int(len(sigs))); errno != 0 {
		// Rare enough (a signal the kernel refuses) to stop: those already taken would
		// otherwise be neither forwarded nor the Go runtime's.
		return nil, fmt.Errorf("catching signals: %w", syscall.Errno(errno))
	}
	return &Relay{fd: fds[0]}, nil
}

// Next waits for the next caught signal.
func (r *Relay) Next() (unix.Signal, error) {
	var b [1]byte
	for {
		n, err := unix.Read(r.fd, b[:])
		if n == 1 {
			return unix.Signal(b[0]), nil
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return 0, err
		}
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return 0, err
		}
	}
}
