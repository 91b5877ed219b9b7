package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/mountinfo"
	"github.com/berth-project/berth/internal/rawfile"
)

// mountCgroup gives the container a view of its own cgroup. With a cgroup namespace (or a pure
// v2 host) that is a real cgroup2 mount, which the kernel roots at the container's group. On a
// v1 or hybrid host without one, it is a tmpfs holding a read-only bind of the container's
// group from each host hierarchy, as runc does, so the container never sees its siblings.
func mountCgroup(root *os.File, c *Config, m *specs.Mount, o mountOpts) error {
	dest, err := mkdirInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	hier, err := selfCgroupMounts()
	if err != nil {
		return err
	}
	unified := len(hier) == 1 && hier[0].fstype == "cgroup2" && hier[0].mountpoint == "/sys/fs/cgroup"
	if m.Type == "cgroup2" || (unified && c.CgroupNS) {
		explain.Stepf("rootfs.mountCgroup", "mount -t cgroup2 cgroup2 %s (flags %s)", m.Destination, flagNames(o.flags))
		err := unix.Mount("cgroup2", fdPath(dest), "cgroup2", o.flags, "")
		if (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EPERM)) && c.UserNS {
			return bindOwnCgroup(root, dest, c, m, o)
		}
		if err != nil {
			return fmt.Errorf("mount -t cgroup2: %w", err)
		}
		return nil
	}
	if !c.CgroupNS {
		if done, err := bindCgroupTree(dest, m, o, hier); done || err != nil {
			return err
		}
	}
	explain.Stepf("rootfs.mountCgroup", "mount -t tmpfs tmpfs %s (a directory to hold the container's cgroups)", m.Destination)
	if err := unix.Mount("tmpfs", fdPath(dest), "tmpfs", o.flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs for cgroups: %w", err)
	}
	// Reopen: the handle still points at the directory under the new tmpfs.
	dir, err := pathrs.OpenatInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, h := range hier {
		name := filepath.Base(h.mountpoint)
		if h.mountpoint == "/sys/fs/cgroup" {
			continue
		}
		if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("mkdir %s/%s: %w", m.Destination, name, err)
		}
		target, err := pathrs.OpenatInRoot(dir, name)
		if err != nil {
			return err
		}
		src := filepath.Join(h.mountpoint, h.path)
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if o.flags&unix.MS_RDONLY != 0 {
			flags |= unix.MS_RDONLY
		}
		if c.CgroupNS {
			// In its own cgroup namespace the init reads "/" for its groups: a fresh
			// mount of each hierarchy, which the kernel roots at the namespace's group,
			// is the container's view (a bind of "/" would be the host's whole tree).
			err := mountFreshCgroup(dir, name, h, flags&^(unix.MS_BIND|unix.MS_REMOUNT))
			target.Close()
			if err != nil {
				return err
			}
			linkComounted(int(dir.Fd()), m.Destination, name)
			continue
		}
		explain.Stepf("rootfs.mountCgroup", "mount --bind %s %s/%s (flags %s)", src, m.Destination, name, flagNames(flags))
		err = unix.Mount(src, fdPath(target), "", unix.MS_BIND, "")
		target.Close()
		if err == nil {
			// A fresh handle: the old one names the directory under the new mount.
			if target, err = pathrs.OpenatInRoot(dir, name); err == nil {
				err = unix.Mount("", fdPath(target), "", flags, "")
				target.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		linkComounted(int(dir.Fd()), m.Destination, name)
	}
	if o.flags&unix.MS_RDONLY != 0 {
		explain.Stepf("rootfs.mountCgroup", "mount -o remount,ro %s", m.Destination)
		if err := unix.Mount("", fdPath(dir), "", o.flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	return nil
}

// bindCgroupTree is the v1 layout mountCgroup makes without a cgroup namespace (a tmpfs at
// the destination holding a bind of the container's group of each hierarchy), in fewer and
// cheaper system calls: the tmpfs is made with fsopen/fsmount and attached by descriptor,
// and each group is cloned with open_tree, given its flags with mount_setattr and moved
// under the tmpfs with move_mount, relative to the tmpfs's own descriptor. No path inside
// the container is resolved after the destination (the tmpfs is new, and nothing runs in
// the container yet), so the secure lookups and remounts through /proc/self/fd of the
// mount(2) way are not needed: about 5 calls a hierarchy instead of about 15. done is false
// (and nothing was mounted) on a kernel without these calls: the caller then mounts the
// mount(2) way.
func bindCgroupTree(dest *os.File, m *specs.Mount, o mountOpts, hier []cgroupHierarchy) (done bool, err error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false, nil
	}
	defer unix.Close(fs)
	if unix.FsconfigSetString(fs, "mode", "755") != nil || unix.FsconfigCreate(fs) != nil {
		return false, nil
	}
	tmpfs, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(mountAttrs(o.flags&^unix.MS_RDONLY)))
	if err != nil {
		return false, nil
	}
	defer unix.Close(tmpfs)
	// mount_setattr (Linux 5.12) is probed on the detached tmpfs, a no-op change.
	if err := unix.MountSetattr(tmpfs, "", unix.AT_EMPTY_PATH, &unix.MountAttr{}); err != nil {
		return false, nil
	}
	explain.Stepf("rootfs.bindCgroupTree", "mount -t tmpfs tmpfs %s (fsmount, attached by descriptor: a directory to hold the container's cgroups)", m.Destination)
	if err := unix.MoveMount(tmpfs, "", int(dest.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return false, nil
	}
	attr := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	if o.flags&unix.MS_RDONLY != 0 {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	for _, h := range hier {
		name := filepath.Base(h.mountpoint)
		if h.mountpoint == "/sys/fs/cgroup" {
			continue
		}
		src := filepath.Join(h.mountpoint, h.path)
		explain.Stepf("rootfs.bindCgroupTree", "mount --bind %s %s/%s (open_tree, mount_setattr %s, move_mount)", src, m.Destination, name, attrNames(attr))
		if err := unix.Mkdirat(tmpfs, name, 0o755); err != nil {
			return true, fmt.Errorf("mkdir %s/%s: %w", m.Destination, name, err)
		}
		tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return true, fmt.Errorf("bind %s: open_tree: %w", src, err)
		}
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attr})
		if err == nil {
			err = unix.MoveMount(tree, "", tmpfs, name, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(tree)
		if err != nil {
			return true, fmt.Errorf("bind %s: %w", src, err)
		}
		linkComounted(tmpfs, m.Destination, name)
	}
	if o.flags&unix.MS_RDONLY != 0 {
		explain.Stepf("rootfs.bindCgroupTree", "mount -o remount,ro %s (mount_setattr)", m.Destination)
		if err := unix.MountSetattr(tmpfs, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return true, fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	return true, nil
}

// attrNames names mount attributes as mount(8) options.
func attrNames(a uint64) string {
	var names []string
	for _, n := range []struct {
		bit  uint64
		name string
	}{{unix.MOUNT_ATTR_RDONLY, "ro"}, {unix.MOUNT_ATTR_NOSUID, "nosuid"}, {unix.MOUNT_ATTR_NODEV, "nodev"}, {unix.MOUNT_ATTR_NOEXEC, "noexec"}} {
		if a&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// linkComounted makes co-mounted controllers ("cpu,cpuacct") reachable by each name.
func linkComounted(dir int, dest, name string) {
	if strings.Contains(name, ",") {
		for _, alias := range strings.Split(name, ",") {
			explain.Stepf("rootfs.mountCgroup", "ln -s %s %s/%s", name, dest, alias)
			_ = unix.Symlinkat(name, dir, alias)
		}
	}
}

// mountFreshCgroup mounts hierarchy h anew at dir/name.
func mountFreshCgroup(dir *os.File, name string, h cgroupHierarchy, flags uintptr) error {
	target, err := pathrs.OpenatInRoot(dir, name)
	if err != nil {
		return err
	}
	defer target.Close()
	fstype, data := h.fstype, ""
	if fstype == "cgroup" {
		data = h.options
		if strings.HasPrefix(data, "name=") {
			data = "none," + data
		}
	}
	explain.Stepf("rootfs.mountCgroup", "mount -t %s -o %s cgroup <cgroup mount>/%s (flags %s; rooted at the cgroup namespace)", fstype, data, name, flagNames(flags))
	if err := unix.Mount("cgroup", fdPath(target), fstype, flags, data); err != nil {
		return fmt.Errorf("mount -t %s -o %s: %w", fstype, data, err)
	}
	return nil
}

type cgroupHierarchy struct {
	mountpoint string // where the host mounts the hierarchy
	fstype     string
	options    string // the v1 controllers (or name=...) that select the hierarchy
	path       string // this process's group inside it
}

// selfCgroupMounts pairs the host's cgroup mounts with this process's group in each, read from
// the host's procfs (the init runs this before pivot_root).
func selfCgroupMounts() ([]cgroupHierarchy, error) {
	groups := map[string]string{} // controller list (or "" for v2) -> path
	data, err := rawfile.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			groups[parts[1]] = parts[2]
		}
	}
	mounts, err := mountinfo.Cgroups()
	if err != nil {
		return nil, err
	}
	var out []cgroupHierarchy
	for _, m := range mounts {
		fstype := m.FSType
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		mp := m.Point
		if !strings.HasPrefix(mp, "/sys/fs/cgroup") {
			continue
		}
		key := ""
		if fstype == "cgroup" {
			var ctrls []string
			for _, opt := range strings.Split(m.SuperOptions, ",") {
				if opt == "rw" || opt == "ro" || strings.HasPrefix(opt, "release_agent=") || opt == "clone_children" || opt == "noprefix" {
					continue
				}
				ctrls = append(ctrls, opt)
			}
			key = strings.Join(ctrls, ",")
		}
		p, ok := groups[key]
		if !ok {
			continue
		}
		// The mount's root may itself be a sub-group (nested containers).
		rel, err := filepath.Rel(m.Root, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		out = append(out, cgroupHierarchy{mountpoint: mp, fstype: fstype, options: key, path: rel})
	}
	return out, nil
}

// bindOwnCgroup stands in for a cgroup2 mount the kernel refuses to a user namespace (its
// cgroup namespace is not the host's, but the one cgroup2 superblock is: EBUSY): the
// container's own group is bound there read-only, which shows what a cgroup namespace would
// (runc does the same). Without a group (rootless, no delegation) an empty read-only tmpfs
// covers the destination, so nothing of the host's hierarchy shows there.
func bindOwnCgroup(root *os.File, dest *os.File, c *Config, m *specs.Mount, o mountOpts) error {
	if c.CgroupDir == "" {
		explain.Stepf("rootfs.bindOwnCgroup", "mount -t tmpfs -o ro %s (no cgroup of its own to show)", m.Destination)
		if err := unix.Mount("tmpfs", fdPath(dest), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=4k"); err != nil {
			return fmt.Errorf("covering %s: %w", m.Destination, err)
		}
		return nil
	}
	explain.Stepf("rootfs.bindOwnCgroup", "mount --bind %s %s, read-only (cgroup2 refused in the user namespace)", c.CgroupDir, m.Destination)
	if err := unix.Mount(c.CgroupDir, fdPath(dest), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount of the container's cgroup %s: %w", c.CgroupDir, err)
	}
	return remountBind(root, m.Destination, (o.flags|unix.MS_RDONLY)&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT))
}
