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
//
// Every step carries the time it began (the host's CLOCK_MONOTONIC, shared by all processes),
// the lane (process) that took it and, with timing on (`--explain=html`, see Timeline), the
// source line that narrated it; processes also mark when they go idle (waiting for another
// one), so that a step lasts from its narration to the next event of its lane.
package explain

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// A Step is one action taken against the kernel.
type Step struct {
	Name   string `json:"step"`
	Detail string `json:"msg"`
	// At is when the step began: nanoseconds of the host's CLOCK_MONOTONIC (see Now).
	At int64 `json:"at,omitempty"`
	// Lane names the process that took the step ("berth run", "init", "program", ...) and
	// Pid is that process's pid on the host (0 when not known).
	Lane string `json:"lane,omitempty"`
	Pid  int    `json:"pid,omitempty"`
	// Where is the source line that narrated the step (with timing on only).
	Where string `json:"where,omitempty"`
	// Dur, when not 0, is how long the step took, measured (Spanf): work done alongside
	// the rest of its lane (layers applied in parallel), which neither ends the step before
	// it nor is ended by the next one.
	Dur int64 `json:"dur,omitempty"`
}

// Idle says whether s is not a step but the mark of its lane going idle (waiting for
// another process, or gone): the step before it in its lane ends there.
func (s Step) Idle() bool { return s.Name == "" }

// A Sink receives steps. It must be safe for use from several goroutines.
type Sink func(Step)

var (
	mu     sync.Mutex
	sink   Sink
	lane   string
	pid    int
	timing bool
)

// SetSink turns explaining on (s != nil) or off (s == nil).
func SetSink(s Sink) {
	mu.Lock()
	sink = s
	mu.Unlock()
}

// CurrentSink is the sink set last (nil: none).
func CurrentSink() Sink {
	mu.Lock()
	defer mu.Unlock()
	return sink
}

// SetLane names the lane of this process's steps and its pid on the host (0 if unknown: the
// init does not know its own, the berth that relays its steps fills it in).
func SetLane(name string, hostPid int) {
	mu.Lock()
	lane, pid = name, hostPid
	mu.Unlock()
}

// SetTiming turns on what only a timeline needs: idle marks (Idle) and the source line of
// each step. Sinks that print text skip idle marks.
func SetTiming(on bool) {
	mu.Lock()
	timing = on
	mu.Unlock()
}

// Timing says whether SetTiming(true) was called (and a sink is set).
func Timing() bool {
	mu.Lock()
	defer mu.Unlock()
	return timing && sink != nil
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
	s, l, p, t := sink, lane, pid, timing
	mu.Unlock()
	if s == nil {
		return
	}
	st := Step{Name: name, Detail: fmt.Sprintf(format, args...), At: Now(), Lane: l, Pid: p}
	if t {
		st.Where = caller(2)
	}
	s(st)
}

// StepAt is Stepf for a step that began earlier, at (Now's clock): the process's own start,
// timed by its C constructor before the Go runtime ran.
func StepAt(at int64, name, format string, args ...any) {
	mu.Lock()
	s, l, p, t := sink, lane, pid, timing
	mu.Unlock()
	if s == nil {
		return
	}
	st := Step{Name: name, Detail: fmt.Sprintf(format, args...), At: at, Lane: l, Pid: p}
	if t {
		st.Where = caller(2)
	}
	s(st)
}

// Spanf is Stepf for work done alongside other steps of this process (in goroutines): call
// the function it returns when the work is over. With timing on the step is recorded then,
// with its start and duration; otherwise it is narrated at once, as Stepf does.
func Spanf(name, format string, args ...any) (done func()) {
	mu.Lock()
	s, l, p, t := sink, lane, pid, timing
	mu.Unlock()
	if s == nil {
		return func() {}
	}
	st := Step{Name: name, Detail: fmt.Sprintf(format, args...), At: Now(), Lane: l, Pid: p}
	if !t {
		s(st)
		return func() {}
	}
	st.Where = caller(2)
	return func() {
		st.Dur = Now() - st.At
		if st.Dur <= 0 {
			st.Dur = 1
		}
		s(st)
	}
}

// Idle marks that this process now waits for another one: its current step ends here. It
// is a no-op unless timing is on.
func Idle() {
	mu.Lock()
	s, l, p, t := sink, lane, pid, timing
	mu.Unlock()
	if s != nil && t {
		s(Step{At: Now(), Lane: l, Pid: p})
	}
}

// Relay passes on a step another process took (the init's, read from its pipe), in lane
// laneName with host pid hostPid when the step does not name them itself.
func Relay(st Step, laneName string, hostPid int) {
	mu.Lock()
	s := sink
	mu.Unlock()
	if s == nil {
		return
	}
	if st.Lane == "" {
		st.Lane = laneName
	}
	if st.Pid == 0 {
		st.Pid = hostPid
	}
	if st.At == 0 {
		st.At = Now()
	}
	s(st)
}

// Other is a lane of another process, for the steps this process sees it take: berth sees the
// init's execve (the end of file on the init pipe) and the start of the user's program.
type Other struct {
	Lane string
	Pid  int
	At   int64 // 0: now
}

// In names another process's lane; at is when (0: now).
func In(laneName string, hostPid int, at int64) Other { return Other{laneName, hostPid, at} }

// Stepf records a step of the other lane, taken by the function called name.
func (o Other) Stepf(name, format string, args ...any) {
	mu.Lock()
	s, t := sink, timing
	mu.Unlock()
	if s == nil {
		return
	}
	st := Step{Name: name, Detail: fmt.Sprintf(format, args...), At: o.At, Lane: o.Lane, Pid: o.Pid}
	if st.At == 0 {
		st.At = Now()
	}
	if t {
		st.Where = caller(2)
	}
	s(st)
}

// Idle marks the other lane idle (or gone) from o.At on; a no-op unless timing is on.
func (o Other) Idle() {
	mu.Lock()
	s, t := sink, timing
	mu.Unlock()
	if s == nil || !t {
		return
	}
	at := o.At
	if at == 0 {
		at = Now()
	}
	s(Step{At: at, Lane: o.Lane, Pid: o.Pid})
}

// caller is "dir/file.go:line" of the function skip frames up, relative to the repository.
func caller(skip int) string {
	_, file, line, ok := runtime.Caller(skip)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s:%d", strings.TrimPrefix(file, repoDir()), line)
}

// repoDir is the repository's directory as this binary's file names spell it (a module
// path with -trimpath, a directory without), found from this file's own name. Only explain
// needs it: looked up once, when first asked (at package init, every berth process paid the
// lookup and the page faults of the line tables it reads, about 0.04 ms).
var repoDir = sync.OnceValue(func() string {
	_, file, _, _ := runtime.Caller(0)
	return strings.TrimSuffix(file, "internal/explain/explain.go")
})
