//go:build !cgo

package nsenter

import "runtime"

// Without cgo there is no constructor (a test binary built static with CGO_ENABLED=0, such
// as the VM guest's, links libcontainer for its types only): nothing was set aside and
// nothing failed.

// SavedStderr is -1: stderr was never set aside.
func SavedStderr() int { return -1 }

// Error is "": no constructor ran.
func Error() string { return "" }

// StartedAt is 0: no constructor ran.
func StartedAt() int64 { return 0 }

// CPUs is runtime.NumCPU: no constructor pinned the process.
func CPUs() int { return runtime.NumCPU() }
