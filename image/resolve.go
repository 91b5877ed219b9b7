package image

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// errRefused marks entries refused for safety.
var errRefused = errors.New("refused")

// cleanName turns a tar name into a relative path with no "." or empty components; ".."
// anywhere is refused rather than clamped.
func cleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%q contains \"..\": %w (it would escape the layer directory)", name, errRefused)
		}
	}
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/"), nil
}

// parent returns an fd for directory dir ("" is the root), creating missing directories
// (0755, root-owned, as tar does) and refusing any symlink on the way.
func (a *applier) parent(dir string) (*dirFd, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		if d, ok := a.dirs[""]; ok {
			return d, nil
		}
		return a.cacheDir("", a.root, true)
	}
	if d, ok := a.dirs[dir]; ok {
		return d, nil
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := unix.Openat2(a.root, dir, &how)
	if err == unix.ENOENT {
		// Create what is missing, one component at a time.
		pdir, base := path.Split(dir)
		p, perr := a.parent(pdir)
		if perr != nil {
			return nil, perr
		}
		if err := unix.Mkdirat(p.fd, base, 0o755); err != nil && err != unix.EEXIST {
			return nil, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		a.markSeen(dir) // this layer's, even if made implicitly: an opaque marker spares it
		if a.implicit != nil {
			a.implicit[dir] = true
		}
		if p.gid != a.egid {
			_ = unix.Fchownat(p.fd, base, a.euid, a.egid, unix.AT_SYMLINK_NOFOLLOW)
		}
		fd, err = unix.Openat2(a.root, dir, &how)
	}
	switch err {
	case nil:
	case unix.ELOOP:
		return nil, fmt.Errorf("%s goes through a symlink: %w (a link followed by a later entry could escape the layer)", dir, errRefused)
	case unix.EXDEV:
		return nil, fmt.Errorf("%s escapes the layer directory: %w", dir, errRefused)
	case unix.ENOTDIR:
		return nil, fmt.Errorf("%s: a parent is not a directory", dir)
	default:
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	if len(a.dirs) >= 256 {
		a.dropDirs()
	}
	return a.cacheDir(dir, fd, false)
}

func (a *applier) cacheDir(dir string, fd int, borrowed bool) (*dirFd, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if !borrowed {
			unix.Close(fd)
		}
		return nil, err
	}
	if borrowed {
		// The root fd belongs to the caller: cache a duplicate so dropDirs may close it.
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		fd = nfd
	}
	if a.mode == mergeMode && !a.finishing {
		// Writing into a directory a lower layer made changes its mtime: note the one it
		// had, for finish to put back (as umoci does) unless this layer sets its own.
		if a.touched == nil {
			a.touched = map[string][2]unix.Timespec{}
		}
		if _, ok := a.touched[dir]; !ok {
			a.touched[dir] = [2]unix.Timespec{st.Atim, st.Mtim}
		}
	}
	d := &dirFd{fd: fd, gid: a.egid}
	if st.Mode&unix.S_ISGID != 0 {
		d.gid = int(st.Gid)
	}
	a.dirs[dir] = d
	return d, nil
}
