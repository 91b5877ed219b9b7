//go:build !lean

package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// prepareMountpoints makes the mount points a create would have made: criu mounts over them
// but does not make them. Those inside a tmpfs mount are left out (criu restores the tmpfs
// with its content), and so are cgroup mounts (inside /sys). A mount point inside an earlier
// bind mount is made in that mount's source, where the container sees it (runc mounts the
// binds for this, runc#2748; the same directory without mounting anything). Every path is
// resolved inside its base (the rootfs or the source), never following a symlink out of it.
func prepareMountpoints(rootfs string, mounts []specs.Mount) error {
	type dir struct{ dest, source string }
	var tmpfs []string
	var binds []dir
	for _, m := range mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, filepath.Clean("/"+m.Destination))
		}
	}
	for _, m := range mounts {
		// Symlinks in the rootfs resolved within it, as the mount is named in the image.
		dest := containerPath(rootfs, m.Destination)
		isBind := m.Type == "bind" || hasBind(m.Options)
		if m.Type == "cgroup" || m.Type == "cgroup2" || underAny(dest, tmpfs) {
			continue
		}
		base, rel, longest := rootfs, dest, 0
		for _, b := range binds {
			if strings.HasPrefix(dest, b.dest+"/") && len(b.dest) > longest {
				base, rel, longest = b.source, strings.TrimPrefix(dest, b.dest), len(b.dest)
			}
		}
		file := false
		if isBind {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return fmt.Errorf("mounts %s: source: %w", m.Destination, err)
			}
			file = !fi.IsDir()
			if !file {
				binds = append(binds, dir{dest: dest, source: m.Source})
			}
		}
		if err := makeMountpoint(base, rel, file); err != nil {
			return fmt.Errorf("mounts %s: %w", m.Destination, err)
		}
	}
	return nil
}

// makeMountpoint makes rel inside base: a directory, or an empty file for a file bind.
func makeMountpoint(base, rel string, file bool) error {
	if !file {
		return pathrs.MkdirAll(base, rel, 0o755)
	}
	root, err := os.Open(base)
	if err != nil {
		return err
	}
	parent, err := pathrs.MkdirAllHandle(root, filepath.Dir(rel), 0o755)
	root.Close()
	if err != nil {
		return err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(rel), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err == unix.EISDIR {
		return nil
	}
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
