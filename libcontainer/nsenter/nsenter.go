// Package nsenter holds the C code berth runs before the Go runtime starts, in the init
// process: the only moment the process is single-threaded. Importing it (for its side effect)
// links the constructor into the binary; see nsenter.c.
package nsenter

// #cgo CFLAGS: -Wall -O2
// extern int berthSavedStderr;
// extern char berthNsError[256];
// extern long long berthStartedAt;
import "C"

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
