package rootfs

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// Config is everything the init process needs to build the root filesystem.
type Config struct {
	Rootfs        string // absolute host path of root.path
	Bundle        string // relative bind sources are relative to it
	Mounts        []specs.Mount
	Propagation   string // linux.rootfsPropagation
	Readonly      bool   // root.readonly
	NoPivot       bool   // --no-pivot
	Devices       []specs.LinuxDevice
	MaskedPaths   []string
	ReadonlyPaths []string
	// HasNetNS tells whether sysfs can be mounted fresh (the kernel refuses a new sysfs
	// outside a net namespace we own; runc binds the host's read-only instead).
	HasNetNS bool
	// UserNS: the container has a user namespace, where mknod of devices is refused and
	// device nodes are bind-mounted from the host instead (as runc does).
	UserNS bool
	// HostMountNS: the config has no mount namespace, so the container shares the host's
	// (runtime.md: an unlisted namespace is inherited). The mounts are then made on the host,
	// all under the rootfs's own bind mount (one detach on delete removes them all), the
	// host's / is never touched, and chroot takes the place of pivot_root.
	HostMountNS bool
	// SourceFds: for mounts[i], a detached mount berth create prepared from the host's side
	// (libcontainer/mountsrc.go): the idmapped clone of a bind source (always used), a clone
	// of a bind source for when the init cannot reach the path from its user namespace, or a
	// read-only clone of /sys alone for a sysfs the kernel refuses to mount there.
	SourceFds map[int]int `json:"sourceFds,omitempty"`
	// BeforePivot runs once every mount is made and before pivot_root: where runtime.md
	// puts the createRuntime and createContainer hooks.
	BeforePivot func() error `json:"-"`
	// AfterPivot runs in the new root before masked and read-only paths apply: linux.sysctl
	// is written there, before readonlyPaths (/proc/sys in CRI's configs) closes it, as runc.
	AfterPivot func() error `json:"-"`
	// CgroupNS says the container has its own cgroup namespace, so a "cgroup" mount can be a
	// real cgroup filesystem that shows only the container's group.
	CgroupNS bool
	// CgroupDir is the container's cgroup v2 directory on the host (/sys/fs/cgroup/...), or
	// "": bound read-only in place of a cgroup2 mount the kernel refuses (a rootless
	// container's cgroup namespace belongs to its user namespace, the cgroup2 superblock to
	// the host's: EBUSY), as runc does. See mountCgroup.
	CgroupDir string `json:",omitempty"`

	// readonlyLater: the read-only tmpfs mounts, made writable so that the mount points and
	// device nodes below them can be made, and remounted read-only by Finish.
	readonlyLater []laterRO
}

type laterRO struct {
	dest  string
	flags uintptr
}

// Setup builds the container's root filesystem and makes it the process's root. It runs in the
// init process, inside the new mount namespace, before anything of the user's runs.
func Setup(c *Config) error {
	if c.HostMountNS {
		explain.Stepf("rootfs.Setup", "no mount namespace: mounts are made on the host under %s, removed by delete", c.Rootfs)
	} else {
		if err := setRootPropagation(c.Propagation); err != nil {
			return err
		}
		if c.Propagation == "shared" || c.Propagation == "rshared" {
			if err := parentMountPrivate(c.Rootfs); err != nil {
				return err
			}
		}
	}
	if err := bindRootfs(c.Rootfs); err != nil {
		return err
	}
	root, err := os.OpenFile(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("root.path: %w", err)
	}
	defer root.Close()
	hasDev := false
	for i := range c.Mounts {
		srcFd, ok := c.SourceFds[i]
		if !ok {
			srcFd = -1
		}
		err := mountEntry(root, c, &c.Mounts[i], srcFd)
		if srcFd >= 0 {
			unix.Close(srcFd)
		}
		if err != nil {
			return fmt.Errorf("mounts[%d] (%s): %w", i, c.Mounts[i].Destination, err)
		}
		if c.Mounts[i].Destination == "/dev" {
			hasDev = true
		}
	}
	if hasDev {
		if err := createDevices(root, c.Devices, c.UserNS); err != nil {
			return err
		}
	} else if err := createConfigDevices(root, c.Devices, c.UserNS); err != nil {
		return err
	}
	if c.BeforePivot != nil {
		if err := c.BeforePivot(); err != nil {
			return err
		}
	}
	if c.HostMountNS {
		err = chrootRoot(c.Rootfs)
	} else if c.NoPivot {
		err = moveRoot(c.Rootfs)
	} else {
		err = pivotRoot(c.Rootfs)
	}
	if err != nil {
		return err
	}
	if c.AfterPivot != nil {
		if err := c.AfterPivot(); err != nil {
			return err
		}
	}
	if err := maskPaths(c.MaskedPaths); err != nil {
		return err
	}
	if err := readonlyPaths(c.ReadonlyPaths); err != nil {
		return err
	}
	if c.Readonly {
		if err := remountRootReadonly(); err != nil {
			return err
		}
	}
	if c.Propagation != "" {
		// Applied again on the new root, as runc does, so that "shared" makes the
		// container's mounts visible to whoever shares them.
		flag, _ := PropagationFlag(c.Propagation)
		explain.Stepf("rootfs.Setup", "mount --make-%s / (linux.rootfsPropagation)", c.Propagation)
		if err := unix.Mount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	return nil
}

// Finish remounts read-only the tmpfs mounts config.json asks read-only (/dev above all), once
// everything under them is made: the mount points of the mounts below, the device nodes and,
// after Setup, /dev/console (runc's finalizeRootfs does the same). The init calls it after the
// console is set up, with the container's root as its own.
func Finish(c *Config) error {
	if len(c.readonlyLater) == 0 {
		return nil
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, l := range c.readonlyLater {
		explain.Stepf("rootfs.Finish", "mount -o remount,bind,ro %s (made read-only once what is under it exists)", l.dest)
		if err := remountBind(root, l.dest, l.flags|unix.MS_RDONLY); err != nil {
			return err
		}
	}
	c.readonlyLater = nil
	return nil
}

// setRootPropagation stops mounts made in the new namespace from propagating back to the host
// (the namespace starts as a copy of the host's, with the host's shared mounts still shared).
func setRootPropagation(name string) error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if name != "" {
		f, err := PropagationFlag(name)
		if err != nil {
			return err
		}
		flag = f
	}
	explain.Stepf("rootfs.setRootPropagation", "mount --make-%s / so nothing mounted here reaches the host", propagationName(flag))
	if err := unix.Mount("", "/", "", flag, ""); err != nil {
		return fmt.Errorf("making / %s: %w", propagationName(flag), err)
	}
	return nil
}

// bindRootfs makes the rootfs a mount point of its own, which pivot_root requires, and keeps it
// private so that pivot_root is allowed even when the host's parent mount is shared.
func bindRootfs(rootfs string) error {
	explain.Stepf("rootfs.bindRootfs", "mount --rbind %s %s (pivot_root needs a mount point)", rootfs, rootfs)
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("root.path: bind mount %s: %w", rootfs, err)
	}
	if err := unix.Mount("", rootfs, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("root.path: make %s private: %w", rootfs, err)
	}
	return nil
}

func propagationName(flag uintptr) string {
	for n, f := range propagationFlags {
		if f == flag {
			return n
		}
	}
	return fmt.Sprintf("%#x", flag)
}
