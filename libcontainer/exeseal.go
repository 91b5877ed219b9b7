package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// sealedExe opens the berth binary through a private, read-only overlayfs mount that exists
// only as this descriptor (fsopen/fsmount: never attached anywhere). The init is executed
// through it, so /proc/PID/exe of every berth process inside a container names a file that
// cannot be opened for writing: the host binary is out of reach (CVE-2019-5736), with no
// copy of the binary made (runc 1.2 uses the same overlay idea).
//
// overlayfs needs two lower layers when it has no upper one; the second is an empty tmpfs,
// itself mounted nowhere, so that it can never overlap the binary's directory (overlayfs
// refuses nested layers).
func sealedExe() (*os.File, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	empty, err := detachedTmpfs()
	if err != nil {
		return nil, fmt.Errorf("sealing the berth binary: %w", err)
	}
	defer unix.Close(empty)
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sealing the berth binary: overlayfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "lowerdir", filepath.Dir(exe)+":"+fmt.Sprintf("/proc/self/fd/%d", empty)); err != nil {
		return nil, fmt.Errorf("sealing the berth binary: overlay lowerdir %s: %w", filepath.Dir(exe), err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("sealing the berth binary: overlay: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("sealing the berth binary: fsmount: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(exe), unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("sealing the berth binary: %w", err)
	}
	explain.Stepf("libcontainer.sealedExe", "%s seen through a read-only overlay mounted nowhere: the init is executed from it (CVE-2019-5736)", exe)
	return os.NewFile(uintptr(fd), exe), nil
}

// detachedTmpfs makes an empty read-only tmpfs that is not attached anywhere and returns its
// root.
func detachedTmpfs() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "size", "4k"); err != nil {
		return -1, err
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, err
	}
	return unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
}
