package image

import (
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// whiteout applies .wh.NAME and .wh..wh..opq in dir.
func (a *applier) whiteout(dir, base string) error {
	p, err := a.parent(dir)
	if err != nil {
		return err
	}
	if base == whOpaque {
		if a.mode == overlayMode {
			if a.record {
				a.opaques = append(a.opaques, strings.TrimSuffix(dir, "/"))
			}
			if userXattrs() {
				if err := dropXwhiteouts(p.fd); err != nil {
					return err
				}
			}
			if err := unix.Fsetxattr(p.fd, opaqueAttr(), []byte("y"), 0); err != nil {
				return fmt.Errorf("marking %s opaque: %w (%s)", dir, err, storeFsHint())
			}
			return nil
		}
		// Everything lower layers put in dir goes; what this layer wrote stays.
		fd, err := unix.Openat(p.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), dir)
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		prefix := strings.TrimSuffix(dir, "/")
		for _, n := range names {
			if _, ok := a.seen[path.Join(prefix, n)]; ok {
				continue
			}
			if err := a.remove(p.fd, n, path.Join(prefix, n)); err != nil {
				return err
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whPrefix)
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		// ".wh..." would name the parent: applied one layer after another, the whole
		// directory above (at the layer's root, the bundle around rootfs) would be deleted.
		return fmt.Errorf("bad whiteout name %q: %w (it names no entry of its directory)", base, errRefused)
	}
	rel := path.Join(dir, name)
	if a.mode == overlayMode {
		// A name this layer also writes stays (it hides lower layers by itself).
		var st unix.Stat_t
		if unix.Fstatat(p.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return nil
		}
		if a.record {
			a.whiteouts = append(a.whiteouts, rel)
		}
		var err error = unix.EPERM
		if !forceXwhiteout {
			err = unix.Mknodat(p.fd, name, unix.S_IFCHR, 0)
		}
		if err == unix.EPERM && userXattrs() {
			err = xwhiteout(p.fd, name) // the kernel refuses the device: the xattr form
		}
		if err != nil {
			return fmt.Errorf("making the overlayfs whiteout %s: %w (%s)", rel, err, storeFsHint())
		}
		return nil
	}
	if _, ok := a.seen[rel]; ok {
		return nil
	}
	// Deleting changes the directory's mtime: keep the one its layer gave it.
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return err
	}
	if err := a.remove(p.fd, name, rel); err != nil {
		return err
	}
	return futimens(p.fd, st.Atim, st.Mtim)
}

// storeFsHint says what the layer store's filesystem must hold.
func storeFsHint() string {
	if userXattrs() {
		return "an ordinary user's layer store must be on a filesystem that holds whiteouts and user xattrs: ext4, xfs, btrfs, tmpfs; not NFS"
	}
	return "the layer store under --root must be on a filesystem that holds whiteouts and trusted xattrs: ext4, xfs, btrfs, tmpfs; not overlayfs or NFS"
}
