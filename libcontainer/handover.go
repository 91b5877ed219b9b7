package libcontainer

// The hand-over stage: berth relays the init's steps until the init execs the user's program.

import (
	"errors"
	"fmt"
	"time"

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
	awaitSignals()
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
	}
	return relay, nil
}

// waitExec waits for the init's end of the pipe to close, which it does by its execve
// (close-on-exec): once it returns, the init is the waiting stage (or the user's program),
// which pause and kill --all can act on safely. An error the init hit on the way is returned.
func waitExec(pipe *initPipe) error {
	var m syncMsg
	if err := pipe.recv(&m); err != nil {
		return nil // end of file: executed
	}
	if m.Type == "error" {
		return errors.New(m.Msg)
	}
	return fmt.Errorf("unexpected message %q from init", m.Type)
}

// relayUntilMsg is relayUntil that returns the awaited message.
func relayUntilMsg(pipe *initPipe, want string) (syncMsg, error) {
	for {
		var m syncMsg
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
			explain.Record(explain.Step{Name: m.Step, Detail: m.Msg, At: time.Unix(0, m.At)})
		case "error":
			return m, errors.New(m.Msg)
		default:
			return m, fmt.Errorf("unexpected message %q from init", m.Type)
		}
	}
}
