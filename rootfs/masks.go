package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// maskPaths hides linux.maskedPaths: a file gets /dev/null bound over it, a directory an empty
// read-only tmpfs. It runs after pivot_root, so every path is the container's own.
func maskPaths(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	null, err := openDevNull()
	if err != nil {
		return err
	}
	defer null.Close()
	for i, p := range paths {
		fd, err := unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("linux.maskedPaths[%d] (%s): %w", i, p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		target := "/proc/self/fd/" + itoa(fd)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			explain.Stepf("rootfs.maskPaths", "mount -t tmpfs -o ro tmpfs %s (hide a directory)", p)
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "")
		} else {
			explain.Stepf("rootfs.maskPaths", "mount --bind /dev/null %s (hide a file)", p)
			err = unix.Mount(fdPath(null), target, "", unix.MS_BIND, "")
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("linux.maskedPaths[%d] (%s): %w", i, p, err)
		}
	}
	return nil
}

// openDevNull opens the container's /dev/null and checks it is the real null device: a
// container could have replaced it with a link to something it wants to expose
// (CVE-2025-31133), and binding that over a masked path would unmask it.
func openDevNull() (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/dev/null", &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return nil, fmt.Errorf("/dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		unix.Close(fd)
		return nil, errors.New("/dev/null is not the null device (1:3): refusing to use it to mask paths")
	}
	return os.NewFile(uintptr(fd), "/dev/null"), nil
}

// readonlyPaths makes linux.readonlyPaths read-only by binding each onto itself and
// remounting the bind read-only.
func readonlyPaths(paths []string) error {
	for i, p := range paths {
		fd, err := unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("linux.readonlyPaths[%d] (%s): %w", i, p, err)
		}
		target := "/proc/self/fd/" + itoa(fd)
		explain.Stepf("rootfs.readonlyPaths", "mount --rbind %s %s && mount -o remount,bind,ro %s", p, p, p)
		err = unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			// Reopen: the old handle names the directory under the new bind mount.
			unix.Close(fd)
			fd, err = unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		}
		if err == nil {
			target = "/proc/self/fd/" + itoa(fd)
			var sfs unix.Statfs_t
			flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_REC)
			if unix.Fstatfs(fd, &sfs) == nil {
				flags |= uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
			}
			err = unix.Mount("", target, "", flags, "")
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("linux.readonlyPaths[%d] (%s): %w", i, p, err)
		}
	}
	return nil
}

// remountRootReadonly is root.readonly.
func remountRootReadonly() error {
	explain.Stepf("rootfs.remountRootReadonly", "mount -o remount,bind,ro / (root.readonly)")
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	var sfs unix.Statfs_t
	if unix.Statfs("/", &sfs) == nil {
		flags |= uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	}
	if err := unix.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("root.readonly: %w", err)
	}
	return nil
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
