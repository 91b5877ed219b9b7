// Package nsenter holds the C code berth runs before the Go runtime starts, in the init
// process: the only moment the process is single-threaded. Importing it (for its side effect)
// links the constructor into the binary; see nsenter.c.
package nsenter

// #cgo CFLAGS: -Wall -O2
// extern int berthSavedStderr;
import "C"

// SavedStderr is the descriptor where the constructor set the init's stderr aside while the
// Go runtime started (stderr being /dev/null meanwhile), or -1.
func SavedStderr() int { return int(C.berthSavedStderr) }
