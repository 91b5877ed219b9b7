package rootfs

import (
	"bufio"
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
			linkComounted(dir, m.Destination, name)
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
		linkComounted(dir, m.Destination, name)
	}
	if o.flags&unix.MS_RDONLY != 0 {
		explain.Stepf("rootfs.mountCgroup", "mount -o remount,ro %s", m.Destination)
		if err := unix.Mount("", fdPath(dir), "", o.flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	return nil
}

// linkComounted makes co-mounted controllers ("cpu,cpuacct") reachable by each name.
func linkComounted(dir *os.File, dest, name string) {
	if strings.Contains(name, ",") {
		for _, alias := range strings.Split(name, ",") {
			explain.Stepf("rootfs.mountCgroup", "ln -s %s %s/%s", name, dest, alias)
			_ = unix.Symlinkat(name, int(dir.Fd()), alias)
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
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) == 3 {
			groups[parts[1]] = parts[2]
		}
	}
	f.Close()
	mounts, err := mountinfo.Read()
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
	return out, s.Err()
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
