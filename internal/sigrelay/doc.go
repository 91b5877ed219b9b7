// Package sigrelay holds the signals a foreground berth (`run`, `exec`, `restore` without
// --detach) forwards to its container, and its SIGCHLDs, from the moment it starts catching
// them until it reads them, in its wait loop, one at a time.
//
// os/signal is not used for them: it arms each signal with a round trip to the Go runtime's
// signal thread, a goroutine locked to its own OS thread (two thread hand-offs a signal), and
// keeps a goroutine blocked in the runtime to deliver them, another thread. For the 60
// signals runc forwards that was about 1.5 ms of CPU and two thirds of a `run`'s context
// switches. Here a plain C handler, installed with sigaction, writes each signal's number to
// a non-blocking pipe, as crun's signalfd does in effect; berth's wait loop polls that pipe.
//
// The Go runtime keeps what it needs: SIGURG (preemption), SIGPROF, and glibc's 32 to 34.
// A fault in berth itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP or SIGSYS raised by the
// kernel, not sent by a process) puts the Go runtime's handler back and lets the fault
// happen again there, so it is still a Go panic or crash. SIGPIPE is ignored by berth's own
// writes (a write to a closed stdout or stderr fails with EPIPE rather than killing berth),
// and forwarded like any other signal when one arrives, as runc does.
package sigrelay
