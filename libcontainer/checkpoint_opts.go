//go:build !lean

package libcontainer

// What checkpoint and restore share: the options of both commands and how they become a CRIU
// request.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/libcontainer/criu"
)

// CriuOpts are the options `berth checkpoint` and `berth restore` share with runc's.
type CriuOpts struct {
	CriuPath     string // the global --criu ("" is criu in $PATH)
	ImagePath    string // absolute; made by checkpoint, read by restore
	WorkPath     string // logs and work files; "" is the image directory
	ParentPath   string // relative to ImagePath: a previous pre-dump
	LeaveRunning bool
	PreDump      bool
	TCP          bool // --tcp-established
	ExtUnixSk    bool
	ShellJob     bool
	FileLocks    bool
	AutoDedup    bool
	LazyPages    bool
	StatusFd     int    // --status-fd: told "\0" once lazy pages are served; -1 none
	PageServer   string // ADDRESS:PORT
	CgroupsMode  string // --manage-cgroups-mode: soft, full, strict, "" (criu's default)
	EmptyNs      []string
	// restore only
	LsmProfile      string
	LsmMountContext string
}

// descriptorsFile records, in the image directory, what the init's stdio were at the dump:
// restore hands criu its own stdio for those that were pipes (runc writes the same file).
const descriptorsFile = "descriptors.json"

// cgroupsMode maps --manage-cgroups-mode to criu's.
func (o *CriuOpts) cgroupsMode() (*rpc.CriuCgMode, error) {
	var m rpc.CriuCgMode
	switch o.CgroupsMode {
	case "":
		return nil, nil
	case "soft":
		m = rpc.CriuCgMode_SOFT
	case "full":
		m = rpc.CriuCgMode_FULL
	case "strict":
		m = rpc.CriuCgMode_STRICT
	default:
		return nil, fmt.Errorf("--manage-cgroups-mode: %q is not soft, full or strict", o.CgroupsMode)
	}
	return &m, nil
}

// emptyNs is criu's empty_ns mask: the network namespace always (berth does not manage the
// container's network devices, so criu must not try to restore them), plus --empty-ns.
func (o *CriuOpts) emptyNs() (uint32, error) {
	mask := uint32(unix.CLONE_NEWNET)
	for _, ns := range o.EmptyNs {
		if ns != string(specs.NetworkNamespace) {
			return 0, fmt.Errorf("--empty-ns: namespace %q is not supported (only network)", ns)
		}
	}
	return mask, nil
}

// baseOpts are the criu options both requests carry.
func (o *CriuOpts) baseOpts(spec *specs.Spec, imageDir, workDir *os.File, log string) (*rpc.CriuOpts, error) {
	mode, err := o.cgroupsMode()
	if err != nil {
		return nil, err
	}
	empty, err := o.emptyNs()
	if err != nil {
		return nil, err
	}
	r := &rpc.CriuOpts{
		ImagesDirFd:       proto.Int32(int32(imageDir.Fd())),
		LogLevel:          proto.Int32(4),
		LogFile:           proto.String(log),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: mode,
		NotifyScripts:     proto.Bool(true),
		ShellJob:          proto.Bool(o.ShellJob),
		TcpEstablished:    proto.Bool(o.TCP),
		ExtUnixSk:         proto.Bool(o.ExtUnixSk),
		FileLocks:         proto.Bool(o.FileLocks),
		EmptyNs:           proto.Uint32(empty),
		OrphanPtsMaster:   proto.Bool(true),
		AutoDedup:         proto.Bool(o.AutoDedup),
		LazyPages:         proto.Bool(o.LazyPages),
	}
	if workDir != nil {
		r.WorkDirFd = proto.Int32(int32(workDir.Fd()))
	}
	// A criu configuration file: the one annotation org.criu.config names ("" for none),
	// else runc's default, so that a host set up for runc's checkpoints works the same.
	if f, ok := spec.Annotations["org.criu.config"]; ok {
		if f != "" {
			r.ConfigFile = proto.String(f)
		}
	} else {
		r.ConfigFile = proto.String("/etc/criu/runc.conf")
	}
	return r, nil
}

// openDirs makes (checkpoint) or opens (restore) the image and work directories. The
// returned log is the path of criu's log file for errors.
func (o *CriuOpts) openDirs(make bool, logName string) (image, work *os.File, log string, err error) {
	if o.ImagePath == "" {
		return nil, nil, "", errors.New("--image-path: no directory")
	}
	if make {
		if err := os.MkdirAll(o.ImagePath, 0o700); err != nil {
			return nil, nil, "", fmt.Errorf("--image-path: %w", err)
		}
	}
	image, err = os.Open(o.ImagePath)
	if err != nil {
		return nil, nil, "", fmt.Errorf("--image-path: %w", err)
	}
	log = filepath.Join(o.ImagePath, logName)
	if o.WorkPath != "" {
		if err := os.MkdirAll(o.WorkPath, 0o700); err != nil {
			image.Close()
			return nil, nil, "", fmt.Errorf("--work-path: %w", err)
		}
		if work, err = os.Open(o.WorkPath); err != nil {
			image.Close()
			return nil, nil, "", fmt.Errorf("--work-path: %w", err)
		}
		log = filepath.Join(o.WorkPath, logName)
	}
	return image, work, log, nil
}

// checkCriu resolves criu and has it check the kernel before anything is made.
func checkCriu(o *CriuOpts) (string, error) {
	p, err := criu.Lookup(o.CriuPath)
	if err != nil {
		return "", err
	}
	if _, err := criu.Check(p); err != nil {
		return "", err
	}
	return p, nil
}

// featureCheck asks criu whether it has what a request needs (memory tracking for
// pre-dumps, userfaultfd for lazy pages).
func featureCheck(path string, want *rpc.CriuFeatures) error {
	t := rpc.CriuReqType_FEATURE_CHECK
	resp, err := criu.Run(criu.Call{Path: path, Req: &rpc.CriuReq{Type: &t, Features: want}})
	if err != nil {
		return err
	}
	got := resp.GetFeatures()
	var missing []string
	if want.GetMemTrack() && !got.GetMemTrack() {
		missing = append(missing, "memory tracking (--pre-dump, --parent-path)")
	}
	if want.GetLazyPages() && !got.GetLazyPages() {
		missing = append(missing, "lazy pages (--lazy-pages)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("criu or this kernel lacks %s", strings.Join(missing, " and "))
	}
	return nil
}

// cgroupV1Binds lists, for a container without a cgroup namespace on a v1 or hybrid host,
// the bind mounts rootfs.mountCgroup made under a "cgroup" mount: destination in the
// container and host directory. criu must be told they are external.
func cgroupV1Binds(spec *specs.Spec, m specs.Mount, cgPath string) []extMount {
	if cgroups.DetectMode() == cgroups.Unified || m.Type == "cgroup2" {
		return nil
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			return nil
		}
	}
	var out []extMount
	seen := map[string]bool{}
	for _, dir := range cgroups.V1Dirs(cgPath) {
		mp := strings.TrimSuffix(dir, cgPath)
		name := filepath.Base(mp)
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, extMount{dest: filepath.Join(m.Destination, name), source: dir})
	}
	if cgroups.DetectMode() == cgroups.Hybrid {
		out = append(out, extMount{dest: filepath.Join(m.Destination, "unified"), source: filepath.Join("/sys/fs/cgroup/unified", cgPath)})
	}
	return out
}

// extMount is a mount whose source is outside the container: criu dumps a reference to it
// (key: its destination) and restore binds the source it is given for that key.
type extMount struct{ dest, source string }

// externalMounts are the container's mounts from outside it: bind mounts, the v1 cgroup
// binds, and device nodes (bound in a user namespace).
func externalMounts(spec *specs.Spec, cgPath string) []extMount {
	var out []extMount
	for _, m := range spec.Mounts {
		switch {
		case m.Type == "bind" || hasBind(m.Options):
			out = append(out, extMount{dest: m.Destination, source: m.Source})
		case m.Type == "cgroup" || m.Type == "cgroup2":
			out = append(out, cgroupV1Binds(spec, m, cgPath)...)
		}
	}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			out = append(out, extMount{dest: d.Path, source: d.Path})
		}
	}
	return out
}

// nsKey is criu's key for an external namespace (runc's name, so images move between them).
func nsKey(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "extRootNetNS"
	case specs.PIDNamespace:
		return "extRootPidNS"
	}
	return ""
}

// criuNsName is criu's (and /proc/PID/ns's) name for a namespace type.
func criuNsName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.PIDNamespace:
		return "pid"
	case specs.MountNamespace:
		return "mnt"
	case specs.IPCNamespace:
		return "ipc"
	case specs.UTSNamespace:
		return "uts"
	case specs.UserNamespace:
		return "user"
	case specs.CgroupNamespace:
		return "cgroup"
	case specs.TimeNamespace:
		return "time"
	}
	return string(t)
}
