package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// fdPath names an open file through procfs so that mount(2) acts on exactly that file, even
// if the path it was opened by has been swapped for a symlink since.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// mountEntry applies one entry of config.json's mounts.
// srcFd is a detached mount berth create prepared for it, or -1 (Config.SourceFds).
func mountEntry(root *os.File, c *Config, m *specs.Mount, srcFd int) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("destination %q: must be an absolute path", m.Destination)
	}
	o := parseOptions(m.Options)
	isBind := o.flags&unix.MS_BIND != 0 || m.Type == "bind"
	if m.Type == "proc" || m.Type == "sysfs" {
		if err := refuseSymlink(root, m.Destination); err != nil {
			return err
		}
	}
	if isBind {
		return mountBind(root, c, m, o, srcFd)
	}
	if m.Type == "sysfs" {
		return mountSysfs(root, c, m, o, srcFd)
	}
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return mountCgroup(root, c, m, o)
	}
	if m.Type == "tmpfs" && o.flags&unix.MS_RDONLY != 0 {
		// Writable until Finish: mounts and devices below it need their mount points.
		o.flags &^= unix.MS_RDONLY
		c.readonlyLater = append(c.readonlyLater, laterRO{m.Destination, o.flags &^ (unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC)})
	}
	if o.tmpcopyup && m.Type == "tmpfs" {
		if err := mountTmpcopyup(root, m, o); err != nil {
			return err
		}
		if err := setRecursiveAttrs(root, m.Destination, o.rec); err != nil {
			return err
		}
		return setPropagation(root, m.Destination, o.propagation)
	}
	dest, err := mkdirInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	data := strings.Join(o.data, ",")
	explain.Stepf("rootfs.mountEntry", "mount -t %s %s %s (flags %s%s)", m.Type, m.Source, m.Destination, flagNames(o.flags), dataNote(data))
	if err := unix.Mount(m.Source, fdPath(dest), m.Type, o.flags, data); err != nil {
		return fmt.Errorf("mount -t %s: %w", m.Type, err)
	}
	if err := setRecursiveAttrs(root, m.Destination, o.rec); err != nil {
		return err
	}
	return setPropagation(root, m.Destination, o.propagation)
}

// setRecursiveAttrs applies the "r"-prefixed options to the mount at dest and all below it.
func setRecursiveAttrs(root *os.File, dest string, r recAttr) error {
	if r.set == 0 && r.clr == 0 {
		return nil
	}
	h, err := pathrs.OpenatInRoot(root, dest)
	if err != nil {
		return err
	}
	defer h.Close()
	explain.Stepf("rootfs.setRecursiveAttrs", "mount_setattr %s AT_RECURSIVE set=%#x clear=%#x", dest, r.set, r.clr)
	attr := unix.MountAttr{Attr_set: r.set, Attr_clr: r.clr}
	if err := unix.MountSetattr(int(h.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("recursive mount options: mount_setattr: %w", err)
	}
	return nil
}

// mountBind bind-mounts a host file or directory. Read-only and the other per-mount flags
// cannot be set by the bind itself: the kernel ignores them there, so a remount follows.
//
// srcFd, when not -1, is the source cloned by berth create (Config.SourceFds): an idmapped
// mount is always that clone; otherwise the clone serves only when this process, root of a
// user namespace, may not reach the source (a directory on its path that only the host's
// root may enter), and the path is bound where it can be, which keeps the kernel's locks on
// the submounts an rbind copies.
func mountBind(root *os.File, c *Config, m *specs.Mount, o mountOpts, srcFd int) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(c.Bundle, src)
	}
	useClone := srcFd >= 0 && len(m.UIDMappings)+len(m.GIDMappings) > 0
	var st unix.Stat_t
	err := unix.Stat(src, &st)
	if srcFd >= 0 && (useClone || errors.Is(err, unix.EACCES)) {
		useClone = true
		err = unix.Fstat(srcFd, &st)
	}
	if err != nil {
		return fmt.Errorf("source: stat %s: %w", src, err)
	}
	dest, err := openOrCreate(root, m.Destination, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	flags := unix.MS_BIND | (o.flags & unix.MS_REC)
	if useClone {
		explain.Stepf("rootfs.mountBind", "move_mount the clone of %s berth create made to %s", src, m.Destination)
		err := unix.MoveMount(srcFd, "", int(dest.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
		if err != nil {
			return fmt.Errorf("bind mount of %s: move_mount: %w", src, err)
		}
	} else {
		explain.Stepf("rootfs.mountBind", "mount --bind %s %s (flags %s)", src, m.Destination, flagNames(uintptr(flags)))
		if err := unix.Mount(src, fdPath(dest), "", uintptr(flags), ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", src, err)
		}
	}
	if extra := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
		if err := remountBind(root, m.Destination, extra); err != nil {
			return err
		}
	}
	rec := o.rec
	if flags&unix.MS_REC != 0 && o.flags&unix.MS_RDONLY != 0 && isSysfs(src) {
		// An rbind of the host's /sys (`spec --rootless`: a user namespace may not mount a
		// sysfs, nor bind /sys alone, its submounts being locked) brings the host's cgroup
		// hierarchies and other kernel filesystems along: "ro" makes them all read-only,
		// covered or not (CVE-2023-25809).
		rec.set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := setRecursiveAttrs(root, m.Destination, rec); err != nil {
		return err
	}
	return setPropagation(root, m.Destination, o.propagation)
}

// isSysfs says whether path lies on a sysfs.
func isSysfs(path string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Type == unix.SYSFS_MAGIC
}

// mountSysfs mounts a new sysfs, as runc does with or without a network namespace (a sysfs
// shows the network devices of the mounter's network namespace). The kernel refuses it to a
// user namespace that does not own that network namespace: the container then gets
// srcFd, the read-only clone of the host's /sys alone that berth create made. Never the
// host's /sys recursively: its submounts include the host's cgroup hierarchies, roots and
// all, which a mount on top only covers and one umount uncovers.
func mountSysfs(root *os.File, c *Config, m *specs.Mount, o mountOpts, srcFd int) error {
	dest, err := mkdirInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	data := strings.Join(o.data, ",")
	explain.Stepf("rootfs.mountSysfs", "mount -t sysfs %s %s (flags %s%s)", m.Source, m.Destination, flagNames(o.flags), dataNote(data))
	err = unix.Mount(m.Source, fdPath(dest), "sysfs", o.flags, data)
	if errors.Is(err, unix.EPERM) && srcFd >= 0 {
		explain.Stepf("rootfs.mountSysfs", "move_mount the read-only clone of the host's /sys (no submounts) to %s", m.Destination)
		err = unix.MoveMount(srcFd, "", int(dest.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
		if err == nil {
			if extra := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
				err = remountBind(root, m.Destination, extra)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("mount -t sysfs: %w", err)
	}
	if err := setRecursiveAttrs(root, m.Destination, o.rec); err != nil {
		return err
	}
	return setPropagation(root, m.Destination, o.propagation)
}

// remountBind sets per-mount flags on a bind mount, keeping the flags the kernel has locked on
// it (a remount that drops nosuid or nodev from a locked mount fails with EPERM).
func remountBind(root *os.File, dest string, flags uintptr) error {
	h, err := pathrs.OpenatInRoot(root, dest)
	if err != nil {
		return err
	}
	defer h.Close()
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(h.Fd()), &sfs); err == nil {
		flags |= uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	}
	flags |= unix.MS_BIND | unix.MS_REMOUNT
	explain.Stepf("rootfs.remountBind", "mount -o remount,bind %s (flags %s)", dest, flagNames(flags))
	if err := unix.Mount("", fdPath(h), "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dest, err)
	}
	return nil
}

func setPropagation(root *os.File, dest string, props []uintptr) error {
	if len(props) == 0 {
		return nil
	}
	h, err := pathrs.OpenatInRoot(root, dest)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, p := range props {
		explain.Stepf("rootfs.setPropagation", "mount --make-%s %s", propagationName(p), dest)
		if err := unix.Mount("", fdPath(h), "", p, ""); err != nil {
			return fmt.Errorf("propagation %s: %w", propagationName(p), err)
		}
	}
	return nil
}

// openOrCreate resolves dest inside the rootfs, creating it as a directory or an empty file
// when missing, and returns an O_PATH handle on it.
func openOrCreate(root *os.File, dest string, dir bool) (*os.File, error) {
	if dir {
		return mkdirInRoot(root, dest)
	}
	if h, err := pathrs.OpenatInRoot(root, dest); err == nil {
		return h, nil
	}
	p, err := resolveInRoot(root, dest)
	if err != nil {
		return nil, err
	}
	parent, err := mkdirInRoot(root, filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	name := filepath.Base(p)
	// Created, never opened (O_EXCL): what exists there may be a device node or a fifo of the
	// image (reached through a magic link, which OpenatInRoot refuses and resolveInRoot follows
	// by name), whose open as root would act on the host's device or block for ever.
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	if err == nil {
		unix.Close(fd)
	}
	fd, err = unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dest), nil
}

// refuseSymlink stops /proc or /sys from being mounted where a symlink in the rootfs points
// (CVE-2019-19921): a later write meant for the real procfs would then land elsewhere.
func refuseSymlink(root *os.File, dest string) error {
	fd, err := unix.Openat2(int(root.Fd()), dest, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS,
	})
	if err == nil {
		unix.Close(fd)
		return nil
	}
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("destination %s is a symlink in the rootfs: refusing to mount there", dest)
	}
	return nil // missing: it will be created as a directory
}

func dataNote(data string) string {
	if data == "" {
		return ""
	}
	return ", data " + data
}
