// Package nsenter holds the C code berth runs before the Go runtime starts, in the init
// process: the only moment the process is single-threaded. Importing it (for its side effect)
// links the constructor into the binary; see nsenter.c.
package nsenter

// #cgo CFLAGS: -Wall -O2
// extern int berthSavedStderr;
// extern long long berthStartNs;
// extern char berthNsError[256];
import "C"

import "time"

// Started is when the process's constructor ran, before the Go runtime started.
func Started() time.Time { return time.Unix(0, int64(C.berthStartNs)) }

// Error is the first failure of the constructor (joining cgroups or namespaces, unsharing,
// forking), or "": the init must not go on after one.
func Error() string { return C.GoString(&C.berthNsError[0]) }

// SavedStderr is the descriptor where the constructor set the init's stderr aside while the
// Go runtime started (stderr being /dev/null meanwhile), or -1.
func SavedStderr() int { return int(C.berthSavedStderr) }
