package image

// The overlay marks of a store an ordinary user owns. Such a store is written and mounted in
// a user namespace (berth re-runs itself in one, mapped from the user's subordinate ids),
// where trusted.* xattrs cannot be set: overlayfs is then mounted with userxattr (Linux 5.11)
// and reads its marks from user.overlay.*. A whiteout stays a 0/0 character device (mknod of
// that one device needs no privilege since Linux 5.8, and overlayfs honours it on every
// kernel that mounts it in a user namespace); if the kernel refuses it, the whiteout is an
// empty file marked user.overlay.whiteout in a directory marked user.overlay.opaque=x (Linux
// 6.8's form, for lower layers).

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/namespaces"
)

var (
	nsOnce    sync.Once
	userMarks bool // set once: overlay marks in user.overlay.*, overlay mounted userxattr
	// forceXwhiteout makes whiteouts in the xattr form (tests of the fallback).
	forceXwhiteout bool
)

// InitialUserNS says whether this process is in the host's user namespace (uid_map maps
// every id to itself): namespaces.InUserNS's answer, read once a process.
func InitialUserNS() bool { return !namespaces.InUserNS() }

// userXattrs says whether overlay marks are user.overlay.* (any user namespace but the
// host's) rather than trusted.overlay.* (root on the host).
func userXattrs() bool {
	nsOnce.Do(func() { userMarks = !InitialUserNS() })
	return userMarks
}

func overlayXattr(name string) string {
	if userXattrs() {
		return "user.overlay." + name
	}
	return "trusted.overlay." + name
}

// opaqueAttr is the xattr that makes a directory opaque ("y"), or, "x", says it holds
// xattr whiteouts.
func opaqueAttr() string { return overlayXattr("opaque") }

// xattrValue reads xattr name of p (not following a symlink); "" when it has none.
func xattrValue(p, name string) string {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil || n < 0 {
		return ""
	}
	return string(buf[:n])
}

// isWhiteout says whether the entry at p (stat st) is an overlayfs whiteout: a 0/0 character
// device, or an empty regular file marked whiteout in a store of user marks.
func isWhiteout(p string, st *unix.Stat_t) bool {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return st.Rdev == 0
	case unix.S_IFREG:
		return st.Size == 0 && userXattrs() && xattrValue(p, overlayXattr("whiteout")) == "y"
	}
	return false
}

// xwhiteout makes name in the directory open as dirfd an xattr whiteout, and marks the
// directory as holding some unless it is opaque already (then nothing below shows anyway).
func xwhiteout(dirfd int, name string) error {
	buf := make([]byte, 4)
	if n, err := unix.Fgetxattr(dirfd, opaqueAttr(), buf); err == nil && string(buf[:n]) == "y" {
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Fsetxattr(fd, overlayXattr("whiteout"), []byte("y"), 0)
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Fsetxattr(dirfd, opaqueAttr(), []byte("x"), 0)
}

// dropXwhiteouts removes the xattr whiteouts of the directory open as dirfd, which is being
// made opaque: overlayfs would show them as empty files there.
func dropXwhiteouts(dirfd int) error {
	buf := make([]byte, 4)
	if n, err := unix.Fgetxattr(dirfd, opaqueAttr(), buf); err != nil || string(buf[:n]) != "x" {
		return nil
	}
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), ".")
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
			continue
		}
		at := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + n
		if xattrValue(at, overlayXattr("whiteout")) == "y" {
			if err := unix.Unlinkat(dirfd, n, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
