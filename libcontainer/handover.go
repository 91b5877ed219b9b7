package libcontainer

// The hand-over stage: berth relays the init's steps until the init execs the user's program.

import (
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/explain"
)

// relayUntil passes the init's explain steps on until it sends want; an error message or the
// init's death ends the wait with an error.
func relayUntil(pipe *initPipe, want string) error {
	_, err := relayUntilMsg(pipe, want)
	return err
}

// goAhead is berth's half of dropAndHandOver: it takes the pty master of a foreground
// terminal and starts relaying it, makes sure signals are caught, says "go", and for a
// detached process waits for the hand-over and then for its exec (waitExec).
func goAhead(pipe *initPipe, console *consoleEnds, detach bool) (*relayConsole, error) {
	var relay *relayConsole
	if console != nil && console.local != nil {
		master, err := console.receiveMaster()
		if err != nil {
			return nil, err
		}
		relay = startRelay(master)
	}
	if err := pipe.send(syncMsg{Type: "go"}); err != nil {
		if relay != nil {
			relay.stop()
		}
		return nil, fmt.Errorf("the process died before it was let go: %w", err)
	}
	if detach {
		if err := relayUntil(pipe, "handedOver"); err != nil {
			return nil, err
		}
		if err := waitExec(pipe); err != nil {
			return nil, err
		}
	} else if explain.Timing() {
		// A foreground process is waited for as a child; on a timeline berth also reads
		// its narration to its execve. Its failures are its own to report (on stderr, with
		// its exit status), as without a timeline.
		_ = waitExec(pipe)
	}
	return relay, nil
}

// waitExec waits for the init's end of the pipe to close, which it does by its execve
// (close-on-exec): once it returns, the init is the waiting stage (or the user's program),
// which pause and kill --all can act on safely. An error the init hit on the way is returned.
func waitExec(pipe *initPipe) error {
	for {
		var m syncMsg
		explain.Idle() // on a timeline: berth waits for the init
		if err := pipe.recv(&m); err != nil {
			return nil // end of file: executed
		}
		switch m.Type {
		case "step": // on a timeline, the init narrates up to its execve
			pipe.relayStep(m)
		case "error":
			return errors.New(m.Msg)
		default:
			return fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}

// executed draws, on a timeline, the init's execve that waitExec saw: the end of the init's
// lane, and the start of the next one: the waiting stage (a created container) or the user's
// program.
func executed(pipe *initPipe, waiting bool, args []string) {
	if !explain.Timing() {
		return
	}
	now := explain.Now()
	explain.In(pipe.lane, pipe.pid, now).Idle()
	if waiting {
		explain.In(explain.LaneWaiting, pipe.pid, now).Stepf("libcontainer.waitForStart", "berth-wait (C, no Go runtime) blocks opening exec.fifo until `berth start`")
		return
	}
	explain.In(explain.LaneProgram, pipe.pid, now).Stepf("libcontainer.execUser", "the user's program runs: %q", args)
}

// relayUntilMsg is relayUntil that returns the awaited message.
func relayUntilMsg(pipe *initPipe, want string) (syncMsg, error) {
	for {
		var m syncMsg
		explain.Idle() // on a timeline: berth waits for the init
		if err := pipe.recv(&m); err != nil {
			return m, fmt.Errorf("init process exited before it was %s", want)
		}
		switch m.Type {
		case want:
			return m, nil
		case "hooks":
			if pipe.onHooks == nil {
				return m, errors.New("init asked for hooks berth does not have")
			}
			if err := pipe.onHooks(); err != nil {
				return m, err
			}
			if err := pipe.send(syncMsg{Type: "resume"}); err != nil {
				return m, err
			}
		case "seccomp":
			if pipe.onSeccomp == nil {
				return m, errors.New("init sent a seccomp listener berth does not expect")
			}
			if err := pipe.onSeccomp(m.SeccompFd); err != nil {
				return m, err
			}
			if err := pipe.send(syncMsg{Type: "seccompDone"}); err != nil {
				return m, err
			}
		case "step":
			pipe.relayStep(m)
		case "error":
			return m, errors.New(m.Msg)
		default:
			return m, fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}
