package libcontainer

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// CatchSignals starts holding the signals berth receives, so that none is lost or kills berth
// before Wait forwards it. Arming them costs a round trip to the Go runtime's signal thread
// per signal (about 2 ms for all of them here), so it runs beside the create, which waits for
// it (awaitSignals) before the container's program may start.
func CatchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 32)
	armed := make(chan struct{})
	signalsArmed = armed
	go func() {
		signal.Notify(sigs)
		close(armed)
	}()
	return sigs
}

// signalsArmed is closed once CatchSignals' handlers are in place (nil: not catching).
var signalsArmed chan struct{}

// awaitSignals waits, before the user's program may run, for CatchSignals to be in place.
func awaitSignals() {
	if signalsArmed != nil {
		<-signalsArmed
	}
}

// Wait is the foreground half of `berth run`: it forwards the signals caught by CatchSignals
// to the container's init, reaps every child that reaches us (berth is a subreaper), and
// returns the init's exit status as a shell reports it: the code, or 128+signal.
func (l *Launched) Wait(sigs chan os.Signal) int {
	// No signal.Stop: it disables every signal one by one through the runtime's signal
	// thread (about 6 ms here), and berth exits right after the container anyway.
	go func() {
		for s := range sigs {
			sig := s.(unix.Signal)
			// SIGCHLD is ours; SIGURG is the Go runtime's preemption; SIGWINCH belongs
			// to the terminal.
			if sig == unix.SIGWINCH && l.relay != nil {
				l.relay.resize()
				continue
			}
			if sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGWINCH {
				continue
			}
			_ = unix.Kill(l.Pid, sig)
		}
	}()
	explain.Idle() // waiting for the program
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		if pid != l.Pid {
			continue // an orphan reparented to us: reaped, nothing more
		}
		explain.In(explain.LaneProgram, l.Pid, 0).Idle() // it exited
		if l.relay != nil {
			l.relay.stop()
		}
		return ExitStatus(ws)
	}
}

// ExitStatus is the shell's view of a wait status.
func ExitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
