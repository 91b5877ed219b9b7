package seccomp

import (
	"errors"
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Install compiles cfg and installs it on the calling thread (on every thread of the
// process with SECCOMP_FILTER_FLAG_TSYNC). notifyFd is the listener fd when an action is
// SCMP_ACT_NOTIFY (close-on-exec; hand it to SendListener), -1 otherwise. A nil cfg
// installs nothing.
//
// The caller must have set no_new_privs or hold CAP_SYS_ADMIN, and should run on a locked
// OS thread that goes on to execve: without TSYNC only that thread is filtered. Compile
// first and call (*Filter).Install to keep the work after the filter is in place minimal.
func Install(cfg *specs.LinuxSeccomp) (notifyFd int, err error) {
	f, err := Compile(cfg)
	if err != nil {
		return -1, err
	}
	if f == nil {
		return -1, nil
	}
	return f.Install()
}

// Install loads the filter with seccomp(SECCOMP_SET_MODE_FILTER). It allocates nothing and
// makes no syscall besides seccomp itself.
func (f *Filter) Install() (notifyFd int, err error) {
	if len(f.prog) == 0 {
		return -1, errors.New("linux.seccomp: empty filter")
	}
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.flags), uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return -1, installError(errno, f.flags)
	}
	if f.notify {
		return int(r), nil
	}
	if r != 0 {
		// TSYNC without a listener returns the id of a thread it could not synchronize.
		return -1, fmt.Errorf("linux.seccomp: installing the filter: thread %d could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)", r)
	}
	return -1, nil
}

func installError(errno unix.Errno, flags uint) error {
	switch errno {
	case unix.EACCES:
		return fmt.Errorf("linux.seccomp: installing the filter: %w (the process needs no_new_privs or CAP_SYS_ADMIN)", errno)
	case unix.EINVAL:
		return fmt.Errorf("linux.seccomp: installing the filter with flags %#x: %w (a flag this kernel does not support?)", flags, errno)
	case unix.ESRCH:
		return fmt.Errorf("linux.seccomp: installing the filter: %w (a thread could not be synchronized for SECCOMP_FILTER_FLAG_TSYNC)", errno)
	case unix.EBUSY:
		return fmt.Errorf("linux.seccomp: installing the filter: %w (another filter of this process already has a listener)", errno)
	}
	return fmt.Errorf("linux.seccomp: installing the filter: %w", errno)
}
