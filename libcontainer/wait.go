package libcontainer

import (
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/sigrelay"
)

// Signals are the signals a foreground berth holds for its container.
type Signals = sigrelay.Relay

// CatchSignals starts holding the signals berth receives (internal/sigrelay), so that none is
// lost or kills berth before Wait forwards it. They are held from its return.
func CatchSignals() (*Signals, error) {
	return sigrelay.Catch()
}

// Wait is the foreground half of `berth run`: it forwards the signals caught by CatchSignals
// to the container's init, reaps every child that reaches us (berth is a subreaper), and
// returns the init's exit status as a shell reports it: the code, or 128+signal. A caught
// SIGCHLD wakes it to reap; without sigs (nil) it only waits.
func (l *Launched) Wait(sigs *Signals) int {
	explain.Idle() // waiting for the program
	flags := 0
	if sigs != nil {
		flags = unix.WNOHANG
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, flags, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		if pid == l.Pid {
			explain.In(explain.LaneProgram, l.Pid, 0).Idle() // it exited
			if l.relay != nil {
				l.relay.stop()
			}
			return ExitStatus(ws)
		}
		if pid > 0 {
			continue // an orphan reparented to us: reaped, nothing more
		}
		// Nothing to reap yet: the next signal, forwarded, until a SIGCHLD.
		for {
			sig, err := sigs.Next()
			if err != nil {
				return 255
			}
			if sig == unix.SIGCHLD {
				break
			}
			// SIGWINCH belongs to the terminal: the relay resizes it.
			if sig == unix.SIGWINCH {
				if l.relay != nil {
					l.relay.resize()
				}
				continue
			}
			_ = unix.Kill(l.Pid, sig)
		}
	}
}

// ExitStatus is the shell's view of a wait status.
func ExitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
