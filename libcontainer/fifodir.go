package libcontainer

// The directory the waiting init reopens the exec fifo through.
//
// The fifo reaches the init as an O_PATH descriptor; opening it for writing (which blocks
// until `berth start`) needs a path, /proc/self/fd/N. That directory stays open in the
// waiting init, and a process of the container that may read the init's descriptors
// (/proc/1/fd: CAP_SYS_PTRACE in the init's mm's user namespace, which is the container's own
// once berth-wait is executed inside it) can walk up from it ("/proc/1/fd/N/../.."). It must
// therefore be on a procfs the container sees anyway: the container's own /proc, or a private
// procfs of the container's pid namespace holding nothing but its processes (subset=pid).
// The host's /proc, which the init sees before pivot_root, would hand the container every
// host process and, through /proc/PID/root, the host's filesystem.

import (
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// mountsProc says whether the config mounts a procfs on /proc (the container's own then
// serves, after pivot_root).
func mountsProc(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if m.Type == "proc" && filepath.Clean(m.Destination) == "/proc" {
			return true
		}
	}
	return false
}

// containerFdDir opens /proc/self/fd as the container sees it, after pivot_root and its
// masked and read-only paths; when that is not a procfs, a private one (pidFdDir).
func containerFdDir() (int, error) {
	fd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		var st unix.Statfs_t
		if unix.Fstatfs(fd, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC {
			return fd, nil
		}
		unix.Close(fd)
	}
	return pidFdDir()
}

// pidFdDir opens self/fd on a procfs of the caller's pid namespace that shows only its
// processes (subset=pid: no /proc/sys, no kernel files), read-only and attached nowhere.
func pidFdDir() (int, error) {
	fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("a private procfs for the exec fifo: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "subset", "pid"); err != nil {
		return -1, fmt.Errorf("a private procfs for the exec fifo: subset=pid: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("a private procfs for the exec fifo: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("a private procfs for the exec fifo: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, "self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("a private procfs for the exec fifo: self/fd: %w", err)
	}
	explain.Stepf("libcontainer.pidFdDir", "the exec fifo is reopened through a private procfs (subset=pid) of the container's pid namespace: the container mounts none on /proc")
	return fd, nil
}
