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

// prepareMountpoints makes, in the rootfs, the mount points a create would have made: criu
// mounts over them but does not make them. Those inside a tmpfs mount are left out (criu
// restores the tmpfs with its content), and so are cgroup mounts (inside /sys). Every path
// is resolved inside the rootfs, never following a symlink out of it.
func prepareMountpoints(rootfs string, mounts []specs.Mount) error {
	var tmpfs []string
	for _, m := range mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, filepath.Clean(m.Destination))
		}
	}
	for _, m := range mounts {
		// Symlinks in the rootfs resolved within it, as the mount is named in the image.
		dest := containerPath(rootfs, m.Destination)
		if m.Type == "cgroup" || m.Type == "cgroup2" || underAny(dest, tmpfs) {
			continue
		}
		file := false
		if m.Type == "bind" || hasBind(m.Options) {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return fmt.Errorf("mounts %s: source: %w", m.Destination, err)
			}
			file = !fi.IsDir()
		}
		if !file {
			if err := pathrs.MkdirAll(rootfs, dest, 0o755); err != nil {
				return fmt.Errorf("mounts %s: %w", m.Destination, err)
			}
			continue
		}
		root, err := os.Open(rootfs)
		if err != nil {
			return err
		}
		parent, err := pathrs.MkdirAllHandle(root, filepath.Dir(dest), 0o755)
		root.Close()
		if err != nil {
			return fmt.Errorf("mounts %s: %w", m.Destination, err)
		}
		fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
		parent.Close()
		if err != nil && err != unix.EISDIR {
			return fmt.Errorf("mounts %s: %w", m.Destination, err)
		}
		if err == nil {
			unix.Close(fd)
		}
	}
	return nil
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
