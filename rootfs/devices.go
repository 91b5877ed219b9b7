package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// defaultDevices are the nodes every container gets (runtime-spec config-linux.md).
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// devLinks are the conventional /dev symlinks.
var devLinks = [][2]string{
	{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
	{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	{"pts/ptmx", "ptmx"},
}

// createDevices fills a fresh /dev: the default nodes, linux.devices, and the standard links.
func createDevices(root *os.File, extra []specs.LinuxDevice, userNS bool) error {
	mode := os.FileMode(0o666)
	for _, d := range defaultDevices {
		d.FileMode = &mode
		if err := makeDevice(root, d, userNS); err != nil {
			return fmt.Errorf("creating %s: %w", d.Path, err)
		}
	}
	if err := createConfigDevices(root, extra, userNS); err != nil {
		return err
	}
	dev, err := pathrs.OpenatInRoot(root, "/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, l := range devLinks {
		explain.Stepf("rootfs.createDevices", "ln -s %s /dev/%s", l[0], l[1])
		if l[1] == "ptmx" {
			// Only the devpts instance's ptmx gives ptys of the container's own.
			_ = unix.Unlinkat(int(dev.Fd()), "ptmx", 0)
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// createConfigDevices creates linux.devices.
func createConfigDevices(root *os.File, devs []specs.LinuxDevice, userNS bool) error {
	for i, d := range devs {
		if filepath.Clean(d.Path) == "/dev/ptmx" {
			// Always the link to the container's devpts instance (createDevices), as runc
			// does: a host ptmx would give the host's ptys.
			continue
		}
		if err := makeDevice(root, d, userNS); err != nil {
			return fmt.Errorf("linux.devices[%d] (%s): %w", i, d.Path, err)
		}
	}
	return nil
}

// deviceMode is a device's node type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits (0666
// unless fileMode says otherwise).
func deviceMode(d specs.LinuxDevice) (typ, perm uint32, err error) {
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return 0, 0, fmt.Errorf("type %q: must be c, b, u or p", d.Type)
	}
	perm = 0o666
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	return typ, perm, nil
}

// makeDevice creates one node with mknodat in its parent, opened inside the rootfs, so a
// symlinked /dev in the image cannot send the node to the host. In a user namespace it binds
// the host's node instead (bindDevice).
func makeDevice(root *os.File, d specs.LinuxDevice, userNS bool) error {
	typ, perm, err := deviceMode(d)
	if err != nil {
		return err
	}
	parent, err := mkdirInRoot(root, filepath.Dir(d.Path))
	if err != nil {
		return err
	}
	defer parent.Close()
	name := filepath.Base(d.Path)
	_ = unix.Unlinkat(int(parent.Fd()), name, 0)
	if userNS {
		return bindDevice(parent, name, d)
	}
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	explain.Stepf("rootfs.makeDevice", "mknod %s %s %d %d (mode %o)", d.Path, d.Type, d.Major, d.Minor, perm)
	if err := unix.Mknodat(int(parent.Fd()), name, typ|perm, int(dev)); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid != 0 || gid != 0 {
		return unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// bindDevice bind-mounts the host's node at d.Path (still reachable: this runs before
// pivot_root) over an empty file: the kernel refuses mknod in a user namespace, and a /dev
// mounted there is nodev anyway. The host node must be the device the config names.
func bindDevice(parent *os.File, name string, d specs.LinuxDevice) error {
	host, err := os.OpenFile(d.Path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("user namespace: the host node to bind: %w", err)
	}
	defer host.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(host.Fd()), &st); err != nil {
		return err
	}
	if unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) || st.Mode&unix.S_IFMT == unix.S_IFREG {
		return fmt.Errorf("user namespace: host %s is not device %d:%d, cannot bind it", d.Path, d.Major, d.Minor)
	}
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		// Listed again (a default device in linux.devices): the first bind is a mount point
		// makeDevice could not unlink; the new bind goes on top of it, never through a link.
		fd, err = unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			var ex unix.Stat_t
			if err = unix.Fstat(fd, &ex); err == nil && ex.Mode&unix.S_IFMT != unix.S_IFREG && ex.Mode&unix.S_IFMT != unix.S_IFCHR && ex.Mode&unix.S_IFMT != unix.S_IFBLK {
				unix.Close(fd)
				return fmt.Errorf("user namespace: %s exists and is not a file or device node", d.Path)
			}
		}
	}
	if err != nil {
		return err
	}
	target := os.NewFile(uintptr(fd), name)
	defer target.Close()
	explain.Stepf("rootfs.bindDevice", "mount --bind %s %s (no mknod in a user namespace)", d.Path, d.Path)
	return unix.Mount(fdPath(host), fdPath(target), "", unix.MS_BIND, "")
}
