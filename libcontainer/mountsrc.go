package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/namespaces"
)

// mountSources opens, in berth create (root in the host's namespaces), the mount sources the
// init may not reach itself, as detached mounts (open_tree OPEN_TREE_CLONE) handed to it by
// descriptor (rootfs.Config.SourceFds), by index in spec.Mounts:
//   - idmapped bind mounts (idmapMount): always used;
//   - in a user namespace, every other bind source: the init's root is an unprivileged uid on
//     the host, so a source under a directory only the host's root may enter fails with
//     EACCES there (runc opens these sources before the user namespace too). The init uses
//     the clone only when it cannot reach the path, so a recursive bind it can make keeps the
//     kernel's locks on the submounts it copies;
//   - in a user namespace without a network namespace, the sysfs mount: the kernel refuses a
//     new sysfs there, so the init gets a read-only clone of the host's /sys, without any of
//     the mounts under it (the host's cgroup hierarchies above all).
func mountSources(spec *specs.Spec, bundle string, plan namespaces.Plan) (map[int]*os.File, error) {
	out := map[int]*os.File{}
	fail := func(i int, err error) (map[int]*os.File, error) {
		for _, f := range out {
			f.Close()
		}
		return nil, fmt.Errorf("mounts[%d] (%s): %w", i, spec.Mounts[i].Destination, err)
	}
	userns := plan.Has(specs.UserNamespace) && plan.Has(specs.MountNamespace)
	for i, m := range spec.Mounts {
		var f *os.File
		var err error
		switch {
		case len(m.UIDMappings)+len(m.GIDMappings) > 0:
			f, err = idmapMount(m, bundle)
		case userns && isBindMount(m):
			f, err = cloneBindSource(m, bundle)
		case userns && m.Type == "sysfs" && !plan.Has(specs.NetworkNamespace):
			f, err = cloneSysfs()
		default:
			continue
		}
		if err != nil {
			return fail(i, err)
		}
		if f != nil {
			out[i] = f
		}
	}
	return out, nil
}

func isBindMount(m specs.Mount) bool {
	return m.Type == "bind" || hasOption(m.Options, "bind") || hasOption(m.Options, "rbind")
}

// cloneBindSource clones a bind mount's source (with its submounts for "rbind"). A source
// even the host's root cannot open is left to the init, which reports it as it would.
func cloneBindSource(m specs.Mount, bundle string) (*os.File, error) {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(bundle, src)
	}
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if hasOption(m.Options, "rbind") {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, nil
		}
		return nil, fmt.Errorf("source: open_tree %s: %w", src, err)
	}
	explain.Stepf("libcontainer.cloneBindSource", "open_tree %s (a user namespace's root may not reach it; the init binds it if so)", src)
	return os.NewFile(uintptr(fd), "source "+src), nil
}

// cloneSysfs clones the host's /sys alone, none of the mounts under it, read-only. Without
// CAP_SYS_ADMIN (berth run by a user) there is none, and the init reports the kernel's refusal.
func cloneSysfs() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/sys", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if errors.Is(err, unix.EPERM) {
		return nil, nil // berth run by a user: the init's mount fails as runc's does
	}
	if err != nil {
		return nil, fmt.Errorf("open_tree /sys: %w", err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("making the clone of /sys read-only: %w", err)
	}
	explain.Stepf("libcontainer.cloneSysfs", "open_tree /sys (not recursive), read-only: a user namespace without a network namespace may not mount sysfs")
	return os.NewFile(uintptr(fd), "sysfs"), nil
}
