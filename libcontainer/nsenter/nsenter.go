// Package nsenter holds the C code berth runs before the Go runtime starts, in the init
// process: the only moment the process is single-threaded. Importing it (for its side effect)
// links the constructor into the binary; see nsenter.c.
package nsenter

// #cgo CFLAGS: -Wall -O2
// #define _GNU_SOURCE
// #include <sched.h>
// extern int berthSavedStderr;
// extern char berthNsError[256];
// extern long long berthStartedAt;
// extern cpu_set_t berthAffinity;
// extern int berthPinned;
import "C"

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cpu_set_t and unix.CPUSet are the same 1024 bits.
var (
	_ [unsafe.Sizeof(C.cpu_set_t{}) - unsafe.Sizeof(unix.CPUSet{})]byte
	_ [unsafe.Sizeof(unix.CPUSet{}) - unsafe.Sizeof(C.cpu_set_t{})]byte
)

// The constructor pinned the process to one CPU so that the Go runtime started with one P
// (nsenter.c, pinForRuntimeStart). Every thread gets its affinity back here, first thing: this
// package's initialiser runs before those of the packages that import it, and before any code
// of berth's own could start a process that would inherit the pin.
func init() {
	if set, ok := startAffinity(); ok {
		unpin(set)
	}
}

// startAffinity is the affinity the process started with, when the constructor pinned it.
func startAffinity() (*unix.CPUSet, bool) {
	return (*unix.CPUSet)(unsafe.Pointer(&C.berthAffinity)), C.berthPinned != 0
}

// unpin sets every thread's affinity to set. The runtime may start a thread meanwhile (a
// clone of a thread still pinned), so the threads are listed again until a listing finds no
// new one: a thread started after that is the clone of one already unpinned. The constructor
// pinned only where /proc/self is this process, in this pid namespace.
func unpin(set *unix.CPUSet) {
	fd, err := unix.Open("/proc/self/task", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		// /proc was there a moment ago: at least this thread, which runs main.
		_ = unix.SchedSetaffinity(0, set)
		return
	}
	defer unix.Close(fd)
	var buf [4096]byte
	done := make(map[int]bool, 8)
	for {
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return
		}
		fresh := false
		for {
			n, err := unix.Getdents(fd, buf[:])
			if err != nil || n <= 0 {
				break
			}
			for b := buf[:n]; len(b) > 0; {
				consumed, _, names := unix.ParseDirent(b, -1, nil)
				b = b[consumed:]
				for _, name := range names {
					tid := atoi(name)
					if tid <= 0 || done[tid] {
						continue
					}
					done[tid], fresh = true, true
					_ = unix.SchedSetaffinity(tid, set) // ESRCH: it has exited
				}
			}
		}
		if !fresh {
			return
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// CPUs is the number of CPUs the process may run on: runtime.NumCPU counts them once, while
// the runtime starts, when the constructor had pinned the process to one.
func CPUs() int {
	if set, ok := startAffinity(); ok {
		return set.Count()
	}
	return runtime.NumCPU()
}

// StartedAt is the CLOCK_MONOTONIC reading (ns) taken when the constructor began, as this
// process's clock reads it, or 0.
func StartedAt() int64 { return int64(C.berthStartedAt) }

// Error is the first failure of the constructor (joining cgroups or namespaces, unsharing,
// forking), or "": the init must not go on after one.
func Error() string { return C.GoString(&C.berthNsError[0]) }

// SavedStderr is the descriptor where the constructor set the init's stderr aside while the
// Go runtime started (stderr being /dev/null meanwhile), or -1.
func SavedStderr() int { return int(C.berthSavedStderr) }

//go:generate go run ./errtextgen
