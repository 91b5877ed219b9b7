package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
)

// Event is one line of `berth events`: "stats" with Data, or "oom" without.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// Stats reads the container's cgroup counters in runc's shape.
func (c *Container) Stats() (*cgroups.RuncStats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if cgroups.IsNone(cg) {
		_, err := cg.Stats() // says why there is none
		return nil, err
	}
	s, err := cgroups.ReadRuncStats(cg)
	if err != nil {
		return nil, fmt.Errorf("reading the stats of cgroup %s: %w", cg.Path(), err)
	}
	return s, nil
}

// errEventsNotRunning is runc's text for `events` on a stopped container.
func errEventsNotRunning(id string) error {
	return fmt.Errorf("container with id %s is not running", id)
}

// StatsEvent reads the stats once, as `events --stats` prints them.
func (c *Container) StatsEvent() (*Event, error) {
	if c.status() == Stopped {
		return nil, errEventsNotRunning(c.ID)
	}
	s, err := c.Stats()
	if err != nil {
		return nil, err
	}
	return &Event{Type: "stats", ID: c.ID, Data: s}, nil
}

// Events streams the container's stats every interval, and an "oom" event for each process
// the kernel OOM-kills in its cgroup, until the container stops. Emit errors end the stream;
// a failed stats read is reported through warn and skipped, as runc does.
func (c *Container) Events(interval time.Duration, emit func(*Event) error, warn func(error)) error {
	if interval <= 0 {
		return errors.New("duration interval must be greater than 0")
	}
	if c.status() == Stopped {
		return errEventsNotRunning(c.ID)
	}
	// A pidfd on init tells when the container stops; the start time, checked after
	// opening it, that the pid is still init's.
	pidfd, err := unix.PidfdOpen(c.State.Pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", c.State.Pid, err)
	}
	defer unix.Close(pidfd)
	if !c.State.initAlive() {
		return errEventsNotRunning(c.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	oom, err := cgroups.NewOOMWatch(cg.Path())
	if err != nil {
		return err
	}
	defer oom.Close()
	emitOOM := func() error {
		for i := oom.Drain(); i > 0; i-- {
			if err := emit(&Event{Type: "oom", ID: c.ID}); err != nil {
				return err
			}
		}
		return nil
	}
	next := time.Now().Add(interval)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if oom.Fd() >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(oom.Fd()), Events: unix.POLLIN})
		}
		// The counter is also read at least every second (every 100ms without a
		// notification fd), in case a notification is missed.
		maxWait := time.Second
		if oom.Fd() < 0 {
			maxWait = 100 * time.Millisecond
		}
		wait := min(time.Until(next), maxWait)
		if wait < 0 {
			wait = 0
		}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if err := emitOOM(); err != nil {
			return err
		}
		if fds[0].Revents != 0 {
			// Init is gone: the cgroup's notification of the kill that ended it may still
			// be on its way (v2 notifies from a work queue), so look once more.
			time.Sleep(50 * time.Millisecond)
			return emitOOM()
		}
		if !time.Now().Before(next) {
			next = next.Add(interval)
			if now := time.Now(); next.Before(now) {
				next = now.Add(interval)
			}
			s, err := c.Stats()
			if err != nil {
				if _, serr := os.Stat(filepath.Join(c.dir, stateFile)); serr != nil {
					return nil // deleted under us
				}
				warn(err)
				continue
			}
			if err := emit(&Event{Type: "stats", ID: c.ID, Data: s}); err != nil {
				return err
			}
		}
	}
}
