package rootfs

import (
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// mountTmpcopyup is runc's "tmpcopyup" for a tmpfs: the new tmpfs starts with what the image
// had at the destination (podman asks it for /tmp, /run, /var/tmp of a --read-only
// container). The tmpfs is made with fsopen/fsmount, mounted nowhere, filled from the
// destination through descriptors, and only then moved over it.
func mountTmpcopyup(root *os.File, m *specs.Mount, o mountOpts) error {
	dest, err := mkdirInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("tmpcopyup: %w", err)
	}
	defer unix.Close(fs)
	for _, d := range o.data {
		k, v, hasV := strings.Cut(d, "=")
		if hasV {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return fmt.Errorf("tmpfs option %q: %w", d, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(mountAttrs(o.flags)))
	if err != nil {
		return fmt.Errorf("tmpfs: fsmount: %w", err)
	}
	defer unix.Close(mnt)
	src, err := unix.Openat(int(dest.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(src)
	explain.Stepf("rootfs.mountTmpcopyup", "mount -t tmpfs %s (flags %s), with the image's %s copied in first", m.Destination, flagNames(o.flags), m.Destination)
	if err := copyDir(src, mnt); err != nil {
		return fmt.Errorf("tmpcopyup: copying %s: %w", m.Destination, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err == nil {
		_ = unix.Fchmodat(mnt, ".", st.Mode&0o7777, 0)
		_ = unix.Fchownat(mnt, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH)
	}
	if err := unix.MoveMount(mnt, "", int(dest.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("tmpcopyup: move_mount: %w", err)
	}
	return nil
}

// mountAttrs turns mount(2) flags into fsmount attributes.
func mountAttrs(flags uintptr) uint {
	var a uint
	for f, attr := range map[uintptr]uint{
		unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
		unix.MS_NOATIME: unix.MOUNT_ATTR_NOATIME, unix.MS_STRICTATIME: unix.MOUNT_ATTR_STRICTATIME,
		unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME, unix.MS_NOSYMFOLLOW: unix.MOUNT_ATTR_NOSYMFOLLOW,
	} {
		if flags&f != 0 {
			a |= attr
		}
	}
	return a
}

// copyDir copies the tree under the directory src into dst, entry by entry through
// descriptors (no path ever leaves the two trees), keeping modes, owners and times.
func copyDir(src, dst int) error {
	dup, err := unix.FcntlInt(uintptr(src), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dup), "dir") // Readdirnames reads (and closes) its own copy
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(src, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		perm := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdirat(dst, n, 0o700); err != nil {
				return err
			}
			s, err := unix.Openat(src, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			t, err := unix.Openat(dst, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(s)
				return err
			}
			err = copyDir(s, t)
			unix.Close(s)
			unix.Close(t)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(src, dst, n, perm); err != nil {
				return err
			}
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			l, err := unix.Readlinkat(src, n, buf)
			if err != nil {
				return err
			}
			if err := unix.Symlinkat(string(buf[:l]), dst, n); err != nil {
				return err
			}
		default:
			if err := unix.Mknodat(dst, n, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := unix.Fchownat(dst, n, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Fchmodat(dst, n, perm, 0); err != nil {
				return err
			}
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(dst, n, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst int, name string, perm uint32) error {
	in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	inf := os.NewFile(uintptr(in), name)
	defer inf.Close()
	out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	outf := os.NewFile(uintptr(out), name)
	defer outf.Close()
	_, err = io.Copy(outf, inf)
	return err
}
