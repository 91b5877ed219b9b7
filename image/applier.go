package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"unsafe"

	"golang.org/x/sys/unix"
)

// applier writes tar entries below one directory, by descriptor: every parent directory is
// opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so no entry can land outside the
// tree, through a symlink (one the layer made, or any other) or through "..".
type applier struct {
	root  int
	mode  applyMode
	layer string
	buf   []byte
	euid  int
	egid  int
	dirs  map[string]*dirFd // open parents
	times []dirTime         // directory mtimes, set once their contents are written
	// seen holds the paths this layer wrote (mergeMode): its whiteouts spare them.
	seen      map[string]struct{}
	touched   map[string][2]unix.Timespec // mergeMode: directories this layer wrote in, their times before
	finishing bool
	// implicit holds the directories this layer has no entry for (overlayMode): made as
	// parents of its entries, they must not mask a lower layer's attributes (see fixImplicit).
	implicit map[string]bool
	// record keeps the whiteouts and opaque directories made (for mergeLayer).
	record    bool
	whiteouts []string
	opaques   []string
	Stats     LayerStats
	written   bool
}

type dirFd struct {
	fd  int
	gid int // the gid a new entry gets: the directory's if it is setgid
}

type dirTime struct {
	path  string
	mtime unix.Timespec
	atime unix.Timespec
}

func newApplier(root int, mode applyMode) *applier {
	b := bufPool.Get().(*[]byte)
	a := &applier{root: root, mode: mode, buf: *b, euid: os.Geteuid(), egid: os.Getegid(),
		dirs: map[string]*dirFd{}}
	if mode == overlayMode {
		a.implicit = map[string]bool{"": true}
	}
	return a
}

func (a *applier) close() {
	a.dropDirs()
	if a.buf != nil {
		b := a.buf
		bufPool.Put(&b)
		a.buf = nil
	}
}

func (a *applier) dropDirs() {
	for k, d := range a.dirs {
		unix.Close(d.fd)
		delete(a.dirs, k)
	}
}

func (a *applier) apply(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: reading tar: %w", a.layer, err)
		}
		a.Stats.Entries++
		if err := a.entry(tr, h); err != nil {
			return fmt.Errorf("layer %s: tar entry %q: %w", a.layer, h.Name, err)
		}
	}
	return a.finish()
}

// finish sets directory times last: writing into a directory changes its mtime.
func (a *applier) finish() error {
	if len(a.touched) > 0 {
		explicit := make(map[string]bool, len(a.times))
		for _, t := range a.times {
			explicit[t.path] = true
		}
		for dir, ts := range a.touched {
			if explicit[dir] {
				continue
			}
			a.times = append([]dirTime{{dir, ts[1], ts[0]}}, a.times...)
		}
		a.touched = nil
	}
	a.finishing = true
	defer func() { a.finishing = false }()
	for i := len(a.times) - 1; i >= 0; i-- {
		t := a.times[i]
		var err error
		if t.path == "" {
			err = futimens(a.root, t.atime, t.mtime)
		} else {
			dir, base := path.Split(t.path)
			var p *dirFd
			if p, err = a.parent(dir); err == nil {
				err = unix.UtimesNanoAt(p.fd, base, []unix.Timespec{t.atime, t.mtime}, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("layer %s: times of %s: %w", a.layer, t.path, err)
		}
	}
	a.times = a.times[:0]
	a.seen = nil
	if a.mode == mergeMode {
		a.dropDirs() // the next layer notes the times of what it touches afresh
	}
	return nil
}

func futimens(fd int, atime, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{atime, mtime}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (a *applier) markSeen(p string) {
	if a.mode == mergeMode {
		if a.seen == nil {
			a.seen = map[string]struct{}{}
		}
		a.seen[p] = struct{}{}
	}
}
