package rootfs

import (
	"errors"
	"fmt"
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
	if err := hideHostProcSys(rootfs); err != nil {
		return err
	}
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

// hideHostProcSys detaches, from the container's mount namespace, every whole procfs and sysfs
// outside the rootfs before moveRoot leaves the old root under the new one. The kernel lets a
// new user namespace mount procfs or sysfs only if one of that type is already fully visible
// in its mount namespace (mount_too_revealing): the host's /proc, still mounted under the
// chroot, would be, and a process of the container could mount a fresh /proc without the
// masked and read-only paths (runc removes them too). Where a mount cannot be detached, an
// empty tmpfs covers it.
func hideHostProcSys(rootfs string) error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.Root != "/" || (m.FSType != "proc" && m.FSType != "sysfs") ||
			m.Point == rootfs || strings.HasPrefix(m.Point, rootfs+"/") {
			continue
		}
		// Slave first, so that the detach does not reach the host's mounts.
		if err := unix.Mount("", m.Point, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
				continue // under a mount detached already
			}
			return fmt.Errorf("--no-pivot: %s: %w", m.Point, err)
		}
		explain.Stepf("rootfs.hideHostProcSys", "umount -l %s (the host's whole %s must not stay under the new root)", m.Point, m.FSType)
		if err := unix.Unmount(m.Point, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("--no-pivot: detaching %s: %w", m.Point, err)
			}
			if err := unix.Mount("tmpfs", m.Point, "tmpfs", unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("--no-pivot: covering %s: %w", m.Point, err)
			}
		}
	}
	return nil
}

// chrootRoot enters the rootfs with chroot alone: without a mount namespace of its own the
// container must not move or pivot the host's root. (A chroot can be left by a process with
// CAP_SYS_CHROOT: a config without a mount namespace trusts its container that much.)
func chrootRoot(rootfs string) error {
	explain.Stepf("rootfs.chrootRoot", "chroot %s (no mount namespace: the host's root stays as it is)", rootfs)
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// HostMountID is the id of the mount on top at path (0 if path is not a mount point): delete
// removes the mounts a container without a mount namespace stacked there since.
func HostMountID(path string) int {
	mounts, err := mountinfo.Read()
	if err != nil {
		return 0
	}
	id := 0
	for _, m := range mounts {
		if m.Point == path {
			id = m.ID // later lines are mounted on top of earlier ones
		}
	}
	return id
}

// UnmountHostMounts detaches what a container without a mount namespace mounted at rootfs
// (its bind of the rootfs, and with it every mount under it), down to the mount that was on
// top there before it was created.
func UnmountHostMounts(rootfs string, before int) error {
	for i := 0; i < 16; i++ {
		top := HostMountID(rootfs)
		if top == 0 || top == before {
			return nil
		}
		explain.Stepf("rootfs.UnmountHostMounts", "umount -l %s (the container's mounts on the host)", rootfs)
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s: %w", rootfs, err)
		}
	}
	return fmt.Errorf("unmounting %s: mounts keep appearing", rootfs)
}

// parentMountPrivate makes the mount that holds the rootfs (the rootfs itself when it is a mount
// point, as containerd's overlay is) private if it is shared: the rootfs's own bind sits on it,
// and pivot_root (like the move of --no-pivot) refuses a new root whose parent mount is shared
// (EINVAL). linux.rootfsPropagation "shared"/"rshared", which containerd's CRI sets for a
// Bidirectional (rshared) mount, makes every mount shared. Only the container's copy of that
// mount changes; runc does the same.
func parentMountPrivate(rootfs string) error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return err
	}
	parent, ok := mountinfo.Containing(mounts, rootfs)
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
