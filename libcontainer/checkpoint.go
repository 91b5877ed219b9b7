//go:build !lean

package libcontainer

// `berth checkpoint`: CRIU dumps the container's processes into an image directory.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/libcontainer/criu"
)

// Checkpoint dumps a running (or paused) container with CRIU. Unless the dump is a pre-dump
// or leaves it running, CRIU kills the container's processes once they are saved, and the
// container is then deleted, as runc does. criu is checked first (found, recent enough, its
// own check of the kernel passes), so a criu that cannot work here fails before anything is
// made.
func (c *Container) Checkpoint(o *CriuOpts) error {
	switch st := c.status(); st {
	case Running, Paused:
	default:
		// runc's words, capital included.
		return fmt.Errorf("Container cannot be checkpointed in %s state", st)
	}
	spec, err := c.State.Spec()
	if err != nil {
		return err
	}
	if spec == nil || spec.Linux == nil {
		return fmt.Errorf("container %s: its state has no linux config", c.ID)
	}
	if c.State.HostMounts {
		return fmt.Errorf("container %s has no mount namespace: criu cannot checkpoint it", c.ID)
	}
	// The flags first, as runc: a bad one is named before criu is even looked for.
	if err := o.validateDump(); err != nil {
		return err
	}
	criuPath, err := checkCriu(o)
	if err != nil {
		return err
	}
	// runc's name, for a pre-dump too: callers look for it after a failure (containerd
	// copies <work>/dump.log into the bundle).
	logName := "dump.log"
	image, work, log, err := o.openDirs(true, logName)
	if err != nil {
		return err
	}
	defer image.Close()
	if work != nil {
		defer work.Close()
	}
	opts, err := o.baseOpts(spec, image, work, logName)
	if err != nil {
		return err
	}
	opts.Pid = proto.Int32(int32(c.State.Pid))
	opts.Root = proto.String(c.State.Rootfs)
	opts.LeaveRunning = proto.Bool(o.LeaveRunning)
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace} {
		if ext, err := externalNs(spec, t); err != nil {
			return err
		} else if ext != "" {
			opts.External = append(opts.External, ext)
		}
	}
	// criu freezes the tasks with the cgroup freezer rather than ptrace-stopping each: the
	// container's group, which holds them all (the init may have moved itself below it, as
	// systemd does into init.scope, leaving its children outside its own group).
	if fz := freezerDir(c.State.CgroupPath); fz != "" {
		opts.FreezeCgroup = proto.String(fz)
	}
	if o.PageServer != "" {
		host, port, _ := net.SplitHostPort(o.PageServer)
		n, _ := strconv.Atoi(port)
		opts.Ps = &rpc.CriuPageServerInfo{Address: proto.String(host), Port: proto.Int32(int32(n))}
	}
	if o.ParentPath != "" {
		opts.ParentImg = proto.String(o.ParentPath)
		opts.TrackMem = proto.Bool(true)
	}
	t := rpc.CriuReqType_DUMP
	if o.PreDump {
		t = rpc.CriuReqType_PRE_DUMP
		if err := featureCheck(criuPath, &rpc.CriuFeatures{MemTrack: proto.Bool(true)}); err != nil {
			return err
		}
	}
	if o.LazyPages {
		if err := featureCheck(criuPath, &rpc.CriuFeatures{LazyPages: proto.Bool(true)}); err != nil {
			return err
		}
		if o.StatusFd >= 0 {
			fl, err := unix.FcntlInt(uintptr(o.StatusFd), unix.F_GETFL, 0)
			if err != nil || fl&(unix.O_WRONLY|unix.O_RDWR) == 0 {
				return fmt.Errorf("--status-fd %d: not a descriptor open for writing", o.StatusFd)
			}
		}
	}
	if !o.PreDump {
		if err := c.describeOutside(opts, image); err != nil {
			return err
		}
	}
	explain.Stepf("libcontainer.Checkpoint", "criu swrk: %s of pid %d into %s", t, c.State.Pid, o.ImagePath)
	_, err = criu.Run(criu.Call{Path: criuPath, Req: &rpc.CriuReq{Type: &t, Opts: opts}, Log: log,
		Notify: func(script string, _ int32, fds []int) error {
			for _, fd := range fds {
				unix.Close(fd)
			}
			if script == "status-ready" && o.StatusFd >= 0 {
				_, _ = unix.Write(o.StatusFd, []byte{0})
				unix.Close(o.StatusFd)
				o.StatusFd = -1
			}
			return nil
		}})
	if err != nil {
		return err
	}
	if o.PreDump || o.LeaveRunning {
		return nil
	}
	// criu killed the processes after the dump: the container is gone.
	return c.destroy()
}

// validateDump checks checkpoint's flags before anything else is done.
func (o *CriuOpts) validateDump() error {
	if o.ParentPath != "" {
		if filepath.IsAbs(o.ParentPath) {
			return fmt.Errorf("--parent-path %s: must be relative to --image-path", o.ParentPath)
		}
		// criu opens it relative to the image directory, ".." included, as the kernel
		// resolves it: from where a symlinked --image-path really is, not lexically.
		p := filepath.Join(physicalPath(o.ImagePath), o.ParentPath)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			if err == nil {
				err = &os.PathError{Op: "stat", Path: p, Err: unix.ENOTDIR}
			}
			return fmt.Errorf("invalid --parent-path: %w", err)
		}
	}
	if o.PageServer != "" {
		host, port, err := net.SplitHostPort(o.PageServer)
		_, perr := strconv.Atoi(port)
		if err != nil || perr != nil || host == "" {
			return fmt.Errorf("--page-server %q: must be ADDRESS:PORT", o.PageServer)
		}
	}
	if _, err := o.cgroupsMode(); err != nil {
		return err
	}
	_, err := o.emptyNs()
	return err
}

// physicalPath is path with its symlinks resolved, as far as it exists (the image directory
// is made after the flags are checked: its missing tail is kept as it is).
func physicalPath(path string) string {
	rest := ""
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == filepath.Dir(p) {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// describeOutside tells criu what of the container comes from outside it (external mounts,
// masked files, devices) and records the init's stdio in the image (descriptors.json).
func (c *Container) describeOutside(opts *rpc.CriuOpts, imageDir *os.File) error {
	spec, err := c.State.Spec()
	if err != nil {
		return err
	}
	rootfs := c.State.Rootfs
	for _, m := range externalMounts(spec, c.State.CgroupPath) {
		d := containerPath(rootfs, m.dest)
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(d), Val: proto.String(d)})
	}
	// Masked files are /dev/null bound over them from the host: criu is told they are
	// /dev/null (masked directories are tmpfs mounts, which criu dumps itself).
	for _, p := range spec.Linux.MaskedPaths {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/root/%s", c.State.Pid, p))
		if err != nil || fi.IsDir() {
			continue
		}
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(p), Val: proto.String("/dev/null")})
	}
	fds := make([]string, 3)
	for i := range fds {
		fds[i], _ = os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", c.State.Pid, i))
	}
	data, err := json.Marshal(fds)
	if err != nil {
		return err
	}
	return writeInDir(imageDir, descriptorsFile, data)
}

// writeInDir writes a file of root's alone in dir (the image directory, which may exist
// already and be someone else's), never through a symlink planted at its name.
func writeInDir(dir *os.File, name string, data []byte) error {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("--image-path: %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// containerPath is a mount destination as the container sees it, symlinks in the rootfs
// resolved within it (criu names mounts by their real path).
func containerPath(rootfs, dest string) string {
	if p, err := securejoin.SecureJoin(rootfs, dest); err == nil {
		if rel, err := filepath.Rel(rootfs, p); err == nil {
			return "/" + rel
		}
	}
	return filepath.Clean("/" + dest)
}

// externalNs is criu's --external for a namespace the container joined by path (criu then
// leaves it out of the image and expects it back at restore), or "".
func externalNs(spec *specs.Spec, t specs.LinuxNamespaceType) (string, error) {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != t || ns.Path == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return "", fmt.Errorf("linux.namespaces %s path: %w", t, err)
		}
		return fmt.Sprintf("%s[%d]:%s", criuNsName(t), st.Ino, nsKey(t)), nil
	}
	return "", nil
}

// freezerDir is the freezer directory of the container's cgroup (its path relative to each
// hierarchy's root): the v2 group on a unified host, its v1 freezer group otherwise ("" if
// none).
func freezerDir(cgPath string) string {
	if cgPath == "" {
		return ""
	}
	if cgroups.DetectMode() == cgroups.Unified {
		return filepath.Join("/sys/fs/cgroup", cgPath)
	}
	return cgroups.V1Dirs(cgPath)["freezer"]
}
