package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// oomWatch tells when the kernel OOM-kills a process of the cgroup: it counts oom_kill in
// memory.oom_control (v1) or memory.events (v2), and offers an fd to poll that becomes
// readable when that may have changed: an eventfd registered on memory.oom_control through
// cgroup.event_control (v1), an inotify watch on memory.events (v2).
type oomWatch struct {
	fd      int    // -1 when there is none: the counter is then only read on each tick
	counter string // the file holding "oom_kill N"
	seen    uint64
	eventfd bool
}

func newOOMWatch(cgPath string) (*oomWatch, error) {
	w := &oomWatch{fd: -1}
	if cgroups.DetectMode() == cgroups.Unified {
		dir := filepath.Join("/sys/fs/cgroup", cgPath)
		w.counter = filepath.Join(dir, "memory.events")
		if _, err := os.Stat(w.counter); err != nil {
			return nil, fmt.Errorf("OOM notifications need the memory controller: %w", err)
		}
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("inotify_init1: %w", err)
		}
		if _, err := unix.InotifyAddWatch(fd, w.counter, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watching %s: %w", w.counter, err)
		}
		w.fd = fd
	} else {
		dir, ok := cgroups.V1Dirs(cgPath)["memory"]
		if !ok {
			return nil, errors.New("OOM notifications need the memory controller, which is not mounted")
		}
		w.counter = filepath.Join(dir, "memory.oom_control")
		ctl, err := os.Open(w.counter)
		if err != nil {
			return nil, fmt.Errorf("OOM notifications: %w", err)
		}
		defer ctl.Close()
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
		if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
			// Kernels may drop v1 event notification: the counter is still polled.
			unix.Close(efd)
		} else {
			w.fd, w.eventfd = efd, true
		}
	}
	w.seen, _ = w.count()
	return w, nil
}

func (w *oomWatch) count() (uint64, error) {
	data, err := os.ReadFile(w.counter)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New(w.counter + ": no oom_kill counter")
}

// drain empties the fd, and returns how many OOM kills happened since the last call.
func (w *oomWatch) drain() int {
	if w.fd >= 0 {
		buf := make([]byte, 4096)
		for {
			if n, err := unix.Read(w.fd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
	n, err := w.count()
	if err != nil || n <= w.seen {
		return 0
	}
	d := n - w.seen
	w.seen = n
	return int(d)
}

func (w *oomWatch) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
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
	oom, err := newOOMWatch(cg.Path())
	if err != nil {
		return err
	}
	defer oom.close()
	emitOOM := func() error {
		for i := oom.drain(); i > 0; i-- {
			if err := emit(&Event{Type: "oom", ID: c.ID}); err != nil {
				return err
			}
		}
		return nil
	}
	next := time.Now().Add(interval)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if oom.fd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(oom.fd), Events: unix.POLLIN})
		}
		// The counter is also read at least every second (every 100ms without a
		// notification fd), in case a notification is missed.
		maxWait := time.Second
		if oom.fd < 0 {
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
