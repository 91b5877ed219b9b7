package explain

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname
)

// clockOffset is what this process's CLOCK_MONOTONIC reads ahead of the host's: nonzero in a
// container's init whose time namespace has a monotonic offset (linux.timeOffsets).
var clockOffset atomic.Int64

// Now is the host's CLOCK_MONOTONIC in nanoseconds. Every process on the host reads the same
// clock, except one in a time namespace with an offset: there the offset is taken off (see
// UseTimeNamespaceOffset), so that steps of berth and of the init line up.
//
// It reads the clock as the Go runtime does, through the vDSO, without a system call: the
// init narrates under its seccomp filter too, which may refuse clock_gettime.
func Now() int64 { return nanotime() - clockOffset.Load() }

// nanotime is the Go runtime's CLOCK_MONOTONIC reading (vDSO on Linux).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// WallTime is the wall-clock time of a reading of Now's clock, for logs.
func WallTime(at int64) time.Time { return time.Now().Add(time.Duration(at - Now())) }

// HostClock converts a CLOCK_MONOTONIC reading of this process (taken in C, say) to the host's.
func HostClock(ns int64) int64 { return ns - clockOffset.Load() }

// UseTimeNamespaceOffset reads the monotonic offset of this process's time namespace from
// /proc/self/timens_offsets (absent without time namespaces: offset 0) so that Now reads the
// host's clock. The init calls it before its rootfs replaces /proc.
func UseTimeNamespaceOffset() {
	data, err := os.ReadFile("/proc/self/timens_offsets")
	if err != nil {
		return
	}
	clockOffset.Store(parseMonotonicOffset(string(data)))
}

// parseMonotonicOffset reads the "monotonic SECS NANOSECS" line of timens_offsets.
func parseMonotonicOffset(s string) int64 {
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "monotonic" && f[0] != "1" { // CLOCK_MONOTONIC is 1
			continue
		}
		sec, err1 := strconv.ParseInt(f[1], 10, 64)
		nsec, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return 0
		}
		return sec*1e9 + nsec
	}
	return 0
}
