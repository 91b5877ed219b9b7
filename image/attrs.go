package image

import (
	"archive/tar"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdAttrs sets owner, special mode bits, xattrs and times of an open regular file.
func (a *applier) fdAttrs(fd int, h *tar.Header, defGid int) error {
	if h.Uid != a.euid || h.Gid != defGid {
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return chownError(err, h)
		}
		// chown clears set-id bits: set them again.
		if h.Mode&0o6000 != 0 {
			if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
				return err
			}
		}
	}
	for k, v := range xattrs(h) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return futimens(fd, atime(h), unix.NsecToTimespec(h.ModTime.UnixNano()))
}

// attrsAt sets the attributes of a directory, symlink, device or fifo by name; directory
// times are left for finish.
func (a *applier) attrsAt(p *dirFd, base string, h *tar.Header, isDir, force bool) error {
	if force || h.Uid != a.euid || h.Gid != p.gid {
		if err := unix.Fchownat(p.fd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", chownError(err, h))
		}
	}
	if h.Typeflag != tar.TypeSymlink && (force || h.Mode&0o6000 != 0 || isDir && p.gid != a.egid) {
		if err := unix.Fchmodat(p.fd, base, uint32(h.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if x := xattrs(h); len(x) > 0 {
		procPath := "/proc/self/fd/" + strconv.Itoa(p.fd) + "/" + base
		for k, v := range x {
			if err := unix.Lsetxattr(procPath, k, []byte(v), 0); err != nil {
				return fmt.Errorf("xattr %s: %w", k, err)
			}
		}
	}
	if isDir {
		return nil
	}
	return unix.UtimesNanoAt(p.fd, base, []unix.Timespec{atime(h), unix.NsecToTimespec(h.ModTime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
}

// rootAttrs sets the root directory's attributes (all: it was not created from the tar).
func (a *applier) rootAttrs(h *tar.Header) error {
	fd := a.root
	{
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return chownError(err, h)
		}
	}
	if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
		return err
	}
	for k, v := range xattrs(h) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return nil
}

// xattrs are the entry's extended attributes, less any that would steer overlayfs. In a
// user namespace (an ordinary user's store) trusted.* ones are left out: the kernel sets
// them for root on the host only.
func xattrs(h *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") ||
			strings.HasPrefix(name, "trusted.") && userXattrs() {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

// chownError says, in a user namespace, which owner of the entry the namespace does not map
// (the kernel's EINVAL alone names nothing).
func chownError(err error, h *tar.Header) error {
	if err == unix.EPERM && !userXattrs() && os.Geteuid() != 0 {
		// An ordinary user outside a user namespace (berth image unpack).
		return fmt.Errorf("owner %d:%d: an ordinary user cannot give files to other owners (berth run --image applies layers in a user namespace of the user's subordinate ids; image unpack does not): %w", h.Uid, h.Gid, err)
	}
	if err != unix.EINVAL || !userXattrs() {
		return err
	}
	return fmt.Errorf("owner %d:%d is not mapped in this user namespace (uid map %q, gid map %q): the user's subordinate ranges in /etc/subuid and /etc/subgid are too small for this image: %w",
		h.Uid, h.Gid, idMap("/proc/self/uid_map"), idMap("/proc/self/gid_map"), err)
}
