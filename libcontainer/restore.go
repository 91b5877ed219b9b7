//go:build !lean

package libcontainer

// `berth restore`: a new container whose processes CRIU brings back from a checkpoint.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/wire"
	"github.com/berth-project/berth/libcontainer/criu"
	"github.com/berth-project/berth/namespaces"
)

// RestoreOpts are the inputs of `berth restore`: a create's (the bundle gives the config,
// the cgroup and its limits, the hooks) and CRIU's.
type RestoreOpts struct {
	CreateOpts
	Criu *CriuOpts
}

// Restore makes a new container from a checkpoint: its state directory and cgroup are made
// as create makes them, CRIU is put into the cgroup (so that what it restores is born there)
// and restores the processes from the image; the restored init is a child of berth (criu's
// sibling), and for a detached restore it is handed over as after create+start. On any
// failure the state directory, the cgroup and any restored process are removed.
func Restore(o RestoreOpts) (l *Launched, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	spec := o.Spec
	if spec.Linux == nil || spec.Process == nil {
		return nil, errors.New("config.json: restore needs the linux and process sections")
	}
	plan, err := namespaces.New(spec)
	if err != nil {
		return nil, err
	}
	if !plan.Has(specs.MountNamespace) {
		return nil, errors.New("linux.namespaces: criu restores a container into a mount namespace of its own; the config has none")
	}
	if err := checkTerminal(o.Detach, spec.Process.Terminal, o.ConsoleSocket); err != nil {
		return nil, err
	}
	// An existing container of that id is named before criu or its cgroup are looked at
	// (runc's order and words): a paused one sharing the cgroup path would otherwise be
	// reported as a frozen cgroup, and a missing criu hide the real cause. publishDir
	// still refuses atomically if one appears meanwhile.
	if _, err := os.Lstat(filepath.Join(o.Root, o.ID)); err == nil {
		return nil, ErrExist
	}
	if _, err := o.Criu.cgroupsMode(); err != nil {
		return nil, err
	}
	if _, err := o.Criu.emptyNs(); err != nil {
		return nil, err
	}
	if err := checkImage(o.Criu.ImagePath); err != nil {
		return nil, err
	}
	criuPath, err := checkCriu(o.Criu)
	if err != nil {
		return nil, err
	}
	if (o.Criu.LsmProfile != "" || o.Criu.LsmMountContext != "") && criuAtLeast(criuPath, 31600) != nil {
		return nil, errors.New("--lsm-profile and --lsm-mount-context need criu 3.16 or newer")
	}
	if err := os.MkdirAll(o.Root, 0o711); err != nil {
		return nil, fmt.Errorf("--root %s: %w", o.Root, err)
	}
	removeAbandonedDirs(o.Root)
	cgPath := spec.Linux.CgroupsPath
	cg, err := cgroups.New(cgPath, o.ID)
	if err != nil {
		return nil, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	if err := cgroups.UseAnnotations(cg, spec.Annotations); err != nil {
		return nil, err
	}
	if err := cgroups.CheckPreexisting(cg); err != nil {
		return nil, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	resources := cgroupResources(spec)
	if err := cgroups.Check(resources); err != nil {
		return nil, err
	}
	c := &Container{ID: o.ID, State: &State{StateFields: wire.StateFields{
		OCIVersion: spec.Version, ID: o.ID, Bundle: o.Bundle, Rootfs: RootfsPath(spec, o.Bundle),
		Created: time.Now().UTC(), Annotations: spec.Annotations, Creating: true,
		CreatorPid: os.Getpid(), CgroupPath: cg.Path(), SystemdCgroup: cgroups.IsSystemd(cg),
	}, Config: spec}}
	if err := c.publishDir(o.Root); err != nil {
		return nil, err
	}
	var console *consoleEnds
	defer func() {
		if err != nil {
			console.Close()
			c.destroy()
			c.Close()
		}
	}()
	if err := cg.Create(); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", cg.Path(), err)
	}
	if spec.Process.Terminal {
		if console, err = openConsoleSocket(o.ConsoleSocket); err != nil {
			return nil, err
		}
	}
	if err := c.restore(o, criuPath, cg, resources, console); err != nil {
		return nil, err
	}
	if c.State.Pid <= 0 {
		return nil, errors.New("criu restore: criu did not say which process it restored")
	}
	c.State.Creating = false
	c.State.CreatorPid = 0
	if err := c.State.save(c.dir); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, c.State.Pid); err != nil {
			return nil, fmt.Errorf("--pid-file: %w", err)
		}
	}
	l = &Launched{Container: c, Pid: c.State.Pid}
	if console != nil && console.local != nil {
		master, err := console.receiveMaster()
		if err != nil {
			return nil, err
		}
		l.relay = startRelay(master)
	}
	console.Close()
	return l, nil
}

// ErrExist is runc's error for a container id that is taken.
var ErrExist = errors.New("container with given ID already exists")

// checkImage refuses an image directory that holds no checkpoint, before anything is made.
func checkImage(dir string) error {
	if dir == "" {
		return errors.New("--image-path: no directory")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--image-path: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--image-path %s: not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
		return fmt.Errorf("--image-path %s: holds no checkpoint (no inventory.img)", dir)
	}
	return nil
}

// criuAtLeast checks criu's version against a minimum (major*10000+minor*100+sublevel).
func criuAtLeast(path string, min int) error {
	n, s, err := criu.Version(path)
	if err != nil {
		return err
	}
	if n < min {
		return fmt.Errorf("criu %s is older than %d.%d", s, min/10000, min/100%100)
	}
	return nil
}

// restore runs criu's RESTORE request for c.
func (c *Container) restore(o RestoreOpts, criuPath string, cg cgroups.Manager, resources *specs.LinuxResources, console *consoleEnds) error {
	spec := o.Spec
	image, work, log, err := o.Criu.openDirs(false, "restore.log")
	if err != nil {
		return err
	}
	defer image.Close()
	if work != nil {
		defer work.Close()
	}
	opts, err := o.Criu.baseOpts(spec, image, work, "restore.log")
	if err != nil {
		return err
	}
	opts.EvasiveDevices = proto.Bool(true)
	opts.RstSibling = proto.Bool(true) // the restored init is our child, as create's init
	if o.Criu.LsmProfile != "" {
		opts.LsmProfile = proto.String(o.Criu.LsmProfile)
	}
	if o.Criu.LsmMountContext != "" {
		opts.LsmMountContext = proto.String(o.Criu.LsmMountContext)
	}
	// criu wants the root to be a mount point whose parent is not overmounted: a bind of
	// the rootfs in the state directory.
	root := filepath.Join(c.dir, criuRootName)
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	defer os.Remove(root)
	if err := unix.Mount(c.State.Rootfs, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s for criu: %w", c.State.Rootfs, err)
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	opts.Root = proto.String(root)

	extra, err := restoreNamespaces(spec, opts)
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	if err != nil {
		return err
	}
	// Bind sources as the create used them: relative ones against the bundle.
	mounts := bundleMounts(spec.Mounts, o.Bundle)
	if err := prepareMountpoints(c.State.Rootfs, mounts); err != nil {
		return err
	}
	withMounts := *spec
	withMounts.Mounts = mounts
	for _, m := range externalMounts(&withMounts, cg.Path()) {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(containerPath(c.State.Rootfs, m.dest)), Val: proto.String(m.source)})
	}
	if len(spec.Linux.MaskedPaths) > 0 {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String("/dev/null"), Val: proto.String("/dev/null")})
	}
	// The init's stdio that were pipes at the dump are replaced by ours (criu's 0-2).
	fds, err := readDescriptors(image)
	if err != nil {
		return err
	}
	for i, s := range fds {
		if strings.Contains(s, "pipe:") {
			opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(s), Fd: proto.Int32(int32(i))})
		}
	}
	hookState := func(pid int) specs.State { return c.specState(Creating, pid) }
	sentMaster := false
	t := rpc.CriuReqType_RESTORE
	req := &rpc.CriuReq{Type: &t, Opts: opts}
	explain.Stepf("libcontainer.restore", "criu swrk: restore from %s into cgroup %s", o.Criu.ImagePath, cg.Path())
	_, err = criu.Run(criu.Call{
		Path: criuPath, Req: req, Log: log, Extra: extra,
		Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
		Started: func(pid int) error {
			return criuIntoCgroup(pid, cg, resources, opts)
		},
		Notify: func(script string, pid int32, fds []int) error {
			switch script {
			case "setup-namespaces":
				closeFds(fds)
				if h := spec.Hooks; h != nil {
					if err := runHooks("prestart", h.Prestart, hookState(int(pid)), hookPlace{dir: o.Bundle}); err != nil {
						return err
					}
					return runHooks("createRuntime", h.CreateRuntime, hookState(int(pid)), hookPlace{dir: o.Bundle})
				}
			case "post-restore":
				closeFds(fds)
				c.State.Pid = int(pid)
				c.State.PidStart, _ = processStartTime(int(pid))
				// Recorded at once: a failure after this point kills it (destroy).
				return c.State.save(c.dir)
			case "orphan-pts-master":
				sentMaster = true
				return sendMaster(console, fds)
			default:
				closeFds(fds)
			}
			return nil
		},
	})
	if err == nil && console != nil && !sentMaster {
		// The caller waits on its console socket for a master that would never come.
		return errors.New("process.terminal is true, but the checkpoint has no terminal to restore")
	}
	return err
}

// readDescriptors reads the image's descriptors.json (none: nil), a regular file in the image
// directory itself: an image is input, and a symlink there must not make berth open a host
// file (a FIFO would hang the restore).
func readDescriptors(imageDir *os.File) ([]string, error) {
	fd, err := unix.Openat(int(imageDir.Fd()), descriptorsFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--image-path: %s: %w", descriptorsFile, err)
	}
	f := os.NewFile(uintptr(fd), descriptorsFile)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("--image-path: %s: not a regular file", descriptorsFile)
	}
	var fds []string
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&fds); err != nil {
		return nil, fmt.Errorf("--image-path: %s: %w", descriptorsFile, err)
	}
	return fds, nil
}

// bundleMounts is mounts with every relative bind source made absolute against the bundle
// (runc's suite writes ./tmp.XXXX): criu opens the sources it is given from its own working
// directory.
func bundleMounts(mounts []specs.Mount, bundle string) []specs.Mount {
	out := make([]specs.Mount, len(mounts))
	for i, m := range mounts {
		if (m.Type == "bind" || hasBind(m.Options)) && m.Source != "" && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(bundle, m.Source)
		}
		out[i] = m
	}
	return out
}

// criuIntoCgroup puts criu into the container's cgroup with its limits before it restores
// anything, and on cgroup v1 tells it the group in each hierarchy.
func criuIntoCgroup(pid int, cg cgroups.Manager, r *specs.LinuxResources, opts *rpc.CriuOpts) error {
	if err := cg.Apply(pid); err != nil {
		return fmt.Errorf("moving criu into cgroup %s: %w", cg.Path(), err)
	}
	if s, ok := cg.(interface{ LeaveGroup() }); ok {
		s.LeaveGroup() // systemd driver: the scope was started around berth
	}
	if err := cg.Set(r); err != nil {
		return err
	}
	// criu restores the tasks into the groups they were dumped from, relative to the root
	// it is told: the container's group, where criu now is (on v2 too, or a copy restored
	// beside a container left running would join the original's group).
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	unified := cgroups.DetectMode() == cgroups.Unified
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] != "" && !unified:
			opts.CgRoot = append(opts.CgRoot, &rpc.CgroupRoot{Ctrl: proto.String(parts[1]), Path: proto.String(parts[2])})
		case parts[0] == "0" && parts[1] == "" && unified:
			opts.CgRoot = append(opts.CgRoot, &rpc.CgroupRoot{Path: proto.String(parts[2])})
		}
	}
	return nil
}

// sendMaster passes the pty master criu made for the restored terminal (its
// "orphan-pts-master") on the console socket, as the init does for a new container.
func sendMaster(console *consoleEnds, fds []int) error {
	if len(fds) != 1 {
		closeFds(fds)
		return fmt.Errorf("criu sent %d descriptors for the pty master, not 1", len(fds))
	}
	defer unix.Close(fds[0])
	if console == nil {
		return errors.New("criu restored a terminal, but process.terminal is false in the config")
	}
	explain.Stepf("libcontainer.sendMaster", "send the restored pty master on the console socket (SCM_RIGHTS)")
	if err := unix.Sendmsg(int(console.forInit.Fd()), []byte("/dev/ptmx"), unix.UnixRights(fds[0]), nil, 0); err != nil {
		return fmt.Errorf("--console-socket: sending the pty master: %w", err)
	}
	return nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// restoreNamespaces tells criu about the namespaces the config joins by path: network and pid
// ones were left out of the image as external and are handed over (inherit_fd, criu's
// descriptors 4...); the others criu joins itself.
func restoreNamespaces(spec *specs.Spec, opts *rpc.CriuOpts) ([]*os.File, error) {
	var extra []*os.File
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		switch ns.Type {
		case specs.NetworkNamespace, specs.PIDNamespace:
			f, err := os.Open(ns.Path)
			if err != nil {
				return extra, fmt.Errorf("linux.namespaces %s path: %w", ns.Type, err)
			}
			opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(nsKey(ns.Type)), Fd: proto.Int32(int32(4 + len(extra)))})
			extra = append(extra, f)
		case specs.CgroupNamespace:
			return extra, errors.New("linux.namespaces: criu cannot restore into a cgroup namespace joined by path")
		default:
			opts.JoinNs = append(opts.JoinNs, &rpc.JoinNamespace{Ns: proto.String(criuNsName(ns.Type)), NsFile: proto.String(ns.Path)})
		}
	}
	return extra, nil
}
