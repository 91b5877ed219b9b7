// Package explain narrates, step by step, what berth asks of the kernel while it builds a
// container: each namespace, mount, pivot_root, cgroup file write, capability drop and the final
// exec. It exists for people learning how containers work, so every package that touches the
// kernel reports through Step and nothing else.
//
// A step's name is the name of the Go function that performed it ("rootfs.pivotRoot"), so a
// reader can jump from a line of `berth --explain` output straight to the code.
//
// Steps may happen in several processes (the berth command and the container's init). The init
// process forwards its steps to the berth command over the log pipe (see libcontainer), which
// renders them all in order through one Sink.
package explain

import (
	"fmt"
	"sync"
	"time"
)

// A Step is one action taken against the kernel. At is when it was recorded, in the process
// that took it (the init's steps keep their own time when relayed): the clock that
// `--log-format json` prints and bench/steps reads.
type Step struct {
	Name   string    `json:"step"`
	Detail string    `json:"msg"`
	At     time.Time `json:"-"`
}

// A Sink receives steps. It must be safe for use from several goroutines.
type Sink func(Step)

var (
	mu   sync.Mutex
	sink Sink
)

// SetSink turns explaining on (s != nil) or off (s == nil).
func SetSink(s Sink) {
	mu.Lock()
	sink = s
	mu.Unlock()
}

// Enabled says whether steps are being recorded; callers use it to skip formatting costs on the
// hot path.
func Enabled() bool {
	mu.Lock()
	defer mu.Unlock()
	return sink != nil
}

// Stepf records that the function called name did what format describes.
func Stepf(name, format string, args ...any) {
	mu.Lock()
	s := sink
	mu.Unlock()
	if s == nil {
		return
	}
	s(Step{Name: name, Detail: fmt.Sprintf(format, args...), At: time.Now()})
}

// Record passes on a step taken elsewhere (the init process) or earlier (the process's start,
// before the Go runtime), with its own time.
func Record(st Step) {
	mu.Lock()
	s := sink
	mu.Unlock()
	if s != nil {
		s(st)
	}
}
