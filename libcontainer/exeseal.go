package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// sealedExe returns a descriptor of the berth binary that no process can write through; every
// berth process that enters a container (init, exec) is executed from it, so /proc/PID/exe in
// the container never leads to the host's binary (CVE-2019-5736).
//
// First choice, no copy: the binary seen through a read-only overlayfs that exists only as a
// descriptor (fsopen/fsmount, attached nowhere), as runc 1.2 does. overlayfs needs two lower
// layers when it has no upper one; the second is an empty tmpfs mounted nowhere (never
// overlapping the binary's directory), or, on kernels that refuse a detached layer (6.1), an
// empty directory in the container's state directory. Last resort: a sealed memfd copy.
func sealedExe(stateDir string) (*os.File, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	var errs []error
	if empty, err := detachedTmpfs(); err == nil {
		f, err := overlaySeal(exe, fmt.Sprintf("/proc/self/fd/%d", empty))
		unix.Close(empty)
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
	}
	empty := filepath.Join(stateDir, "exe-seal")
	if err := os.Mkdir(empty, 0o700); err == nil || os.IsExist(err) {
		f, err := overlaySeal(exe, empty)
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
	}
	f, err := memfdSeal(exe)
	if err != nil {
		return nil, fmt.Errorf("sealing the berth binary: %w", errors.Join(append(errs, err)...))
	}
	return f, nil
}

func overlaySeal(exe, secondLower string) (*os.File, error) {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("overlayfs: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "lowerdir", filepath.Dir(exe)+":"+secondLower); err != nil {
		return nil, fmt.Errorf("overlay lowerdir %s: %w", filepath.Dir(exe), err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(exe), unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	explain.Stepf("libcontainer.sealedExe", "%s seen through a read-only overlay mounted nowhere: the init is executed from it (CVE-2019-5736)", exe)
	return os.NewFile(uintptr(fd), exe), nil
}

// memfdSeal copies the binary into a memfd sealed against any change.
func memfdSeal(exe string) (*os.File, error) {
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), exe)
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		f.Close()
		return nil, err
	}
	defer src.Close()
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying into the memfd: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing the memfd: %w", err)
	}
	explain.Stepf("libcontainer.sealedExe", "%s copied into a sealed memfd (no overlayfs here): the init is executed from it (CVE-2019-5736)", exe)
	return f, nil
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
