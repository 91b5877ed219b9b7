package rootfs

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/mountinfo"
)

// pivotRoot makes rootfs the root of the mount namespace and detaches the host's root, so that
// nothing of the host filesystem stays reachable (unlike chroot, which a root process can
// leave). pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
// removes the old root without needing a directory for it inside the container.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := parentMountPrivate(rootfs); err != nil {
		return err
	}
	explain.Stepf("rootfs.pivotRoot", "pivot_root %s (the rootfs becomes /)", rootfs)
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w (use --no-pivot for roots that cannot be pivoted, e.g. ramfs)", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// Slave first, so the unmount below does not propagate to the host's mounts.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	explain.Stepf("rootfs.pivotRoot", "umount -l (old root): the host's filesystem is gone from the container")
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is --no-pivot: move the rootfs mount over / and chroot into it. It serves roots that
// pivot_root refuses (an initramfs), at the cost of leaving the old root under the new one.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	explain.Stepf("rootfs.moveRoot", "mount --move %s / && chroot . (--no-pivot)", rootfs)
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move mount %s: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// parentMountPrivate makes the mount under the rootfs's own mount private if it is shared:
// pivot_root refuses a new root whose parent mount is shared (EINVAL), which is what
// linux.rootfsPropagation "shared"/"rshared" makes of every mount (runc does the same).
// Only the container's copy of that mount changes.
func parentMountPrivate(rootfs string) error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return err
	}
	parent, ok := mountinfo.Containing(mounts, filepath.Dir(rootfs))
	if !ok {
		return nil
	}
	for _, o := range parent.Optional {
		if strings.HasPrefix(o, "shared:") {
			explain.Stepf("rootfs.parentMountPrivate", "mount --make-private %s (pivot_root refuses a shared parent)", parent.Point)
			if err := unix.Mount("", parent.Point, "", unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("making %s private for pivot_root: %w", parent.Point, err)
			}
		}
	}
	return nil
}
