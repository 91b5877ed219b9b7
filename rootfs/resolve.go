package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// maxLinks bounds the symlinks followed in one path, as the kernel's 40 does.
const maxLinks = 40

// resolveInRoot turns dest into a path of the rootfs without symlinks in its existing part,
// following each symlink as if the rootfs were / (an absolute target restarts at the rootfs,
// ".." stops at it), so that a destination reached through a symlink whose target does not
// exist yet (a dangling link) can be created where the link points, inside the rootfs, as runc
// does. The path is only a name: creating and opening it go through pathrs's in-root
// resolution again, so a link swapped in meanwhile still cannot lead out of the rootfs.
func resolveInRoot(root *os.File, dest string) (string, error) {
	resolved := "/"
	rest := strings.Split(filepath.Clean("/"+dest), "/")
	links := 0
	buf := make([]byte, unix.PathMax)
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, comp)
		n, err := unix.Readlinkat(int(root.Fd()), "."+next, buf)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				// Nothing exists from here on: no more links to follow.
				return filepath.Join(append([]string{next}, rest...)...), nil
			}
			if errors.Is(err, unix.EINVAL) {
				resolved = next // not a symlink
				continue
			}
			return "", &os.PathError{Op: "readlink", Path: next, Err: err}
		}
		if links++; links > maxLinks {
			return "", &os.PathError{Op: "resolve", Path: dest, Err: unix.ELOOP}
		}
		target := string(buf[:n])
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// mkdirInRoot makes the directory dest inside the rootfs (and its parents), following
// symlinks as resolveInRoot does, and returns an O_PATH handle on it.
func mkdirInRoot(root *os.File, dest string) (*os.File, error) {
	p, err := resolveInRoot(root, dest)
	if err != nil {
		return nil, err
	}
	return pathrs.MkdirAllHandle(root, p, 0o755)
}
