package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// idmapMount prepares a bind mount of config.json that carries uidMappings/gidMappings
// (runtime-spec "idmap"/"ridmap"): berth create, still root in the host's namespaces, clones
// the source with open_tree, shifts its owners with mount_setattr(MOUNT_ATTR_IDMAP) through a
// user namespace that has exactly the mount's mappings, and hands the resulting detached mount
// to the init (mountSources), which moves it into place (rootfs.Config.SourceFds).
func idmapMount(m specs.Mount, bundle string) (*os.File, error) {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(bundle, src)
	}
	// As runc and crun: the mapping has the form of the container's own user namespace
	// mapping; an on-disk containerID shows as hostID, so with the container's mapping the
	// files of a root-owned source are its root's.
	userns, err := usernsWithMappings(m.UIDMappings, m.GIDMappings)
	if err != nil {
		return nil, err
	}
	defer userns.Close()
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	recursive := hasOption(m.Options, "rbind") || hasOption(m.Options, "ridmap")
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return nil, fmt.Errorf("source: open_tree %s: %w", src, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	at := unix.AT_EMPTY_PATH
	if recursive {
		at |= unix.AT_RECURSIVE
	}
	explain.Stepf("libcontainer.idmapMount", "open_tree %s, mount_setattr MOUNT_ATTR_IDMAP (uid %v, gid %v): the init moves it to %s", src, m.UIDMappings, m.GIDMappings, m.Destination)
	if err := unix.MountSetattr(fd, "", uint(at), &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("idmapping %s: mount_setattr: %w (the filesystem must support idmapped mounts)", src, err)
	}
	return os.NewFile(uintptr(fd), "idmapped "+src), nil
}

// usernsWithMappings returns a user namespace with the given mappings: that of a process made
// only to hold it (the "berth-userns" stage of the C constructor), killed once it is open.
func usernsWithMappings(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	if len(uids) == 0 {
		uids = gids
	}
	if len(gids) == 0 {
		gids = uids
	}
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-userns"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER, UidMappings: idMappings(uids), GidMappings: idMappings(gids),
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("making a user namespace for the mapping: %w", err)
	}
	defer func() {
		_ = p.Kill()
		_, _ = p.Wait()
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(p.Pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("opening the mapping's user namespace: %w", err)
	}
	return f, nil
}
