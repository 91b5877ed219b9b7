package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OOMWatch tells when the kernel OOM-kills a process of the cgroup: it counts oom_kill in
// memory.oom_control (v1) or memory.events (v2), and offers an fd to poll that becomes
// readable when that may have changed: an eventfd registered on memory.oom_control through
// cgroup.event_control (v1), an inotify watch on memory.events (v2).
type OOMWatch struct {
	fd      int    // -1 when there is none: the counter is then only read on each tick
	counter string // the file holding "oom_kill N"
	seen    uint64
	eventfd bool
}

// NewOOMWatch watches the cgroup at cgPath (relative to the hierarchy roots).
func NewOOMWatch(cgPath string) (*OOMWatch, error) {
	w := &OOMWatch{fd: -1}
	if DetectMode() == Unified {
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
		dir, ok := V1Dirs(cgPath)["memory"]
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

func (w *OOMWatch) count() (uint64, error) {
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

// Drain empties the fd, and returns how many OOM kills happened since the last call.
func (w *OOMWatch) Drain() int {
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

func (w *OOMWatch) Close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// Fd is the descriptor to poll for a possible OOM kill, or -1 when there is none (then poll
// the counter with Drain on a short tick).
func (w *OOMWatch) Fd() int { return w.fd }
