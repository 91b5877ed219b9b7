package cgroups

// Rootless cgroups: what an ordinary user's container gets.
//
//   - cgroup v2 with a delegated subtree (the user owns a directory, and its parent enabled
//     the controllers in cgroup.subtree_control, as systemd's user@.service does): the
//     container's group is made there and limits work as for root. With no cgroupsPath the
//     group is <parent of berth's own group>/<id> (as runc: berth's own group holds processes,
//     so controllers cannot be enabled below it); a relative cgroupsPath is placed there too.
//   - anything else (a cgroup v1 or hybrid host, like the development machine; a v2 host
//     without delegation): no group at all. The container runs in berth's group; a config
//     that asks for a limit is refused, naming the field (noCgroup.Set). Device rules are
//     ignored, as runc does: an ordinary user cannot load the eBPF program, and the container
//     gets no device node it could not open already.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// Rootless is set by the CLI (--rootless, or auto: euid not 0, or root in a user namespace
// that is not the initial one).
var Rootless bool

// newRootless is New for a rootless container (see the top of this file). A cgroupsPath the
// config names must be usable, as with runc: one the user may not write is an error, not a
// container without a cgroup (on v1, a user-owned directory in each hierarchy is used as for
// root: runc's suite delegates v1 that way).
func newRootless(path, id string) (Manager, error) {
	explicit := path != ""
	if DetectMode() != Unified {
		if !explicit {
			return &noCgroup{why: "a cgroup v1 host gives an ordinary user no cgroup"}, nil
		}
		if !filepath.IsAbs(path) {
			path = "/berth/" + path
		}
		m, err := Open(path, id, false)
		if err != nil {
			return nil, err
		}
		if v, ok := m.(*v1); ok {
			v.unified = "" // a hybrid host's cgroup2 tree is root's; it holds no limit anyway
			v.rootless = true
		}
		return m, nil
	}
	if path == "" {
		path = id
	}
	if !filepath.IsAbs(path) {
		own, err := ownV2Group()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(filepath.Dir(own), path)
	}
	clean := filepath.Clean(path)
	if strings.Contains(path, "/../") || strings.HasSuffix(path, "/..") || clean == "/" {
		return nil, fmt.Errorf("%q: must name a cgroup below the root, without \"..\"", path)
	}
	dir := filepath.Join(root, clean)
	// Delegated: the group exists and is ours, or its parent is ours to make it in.
	probe := dir
	if _, err := os.Stat(dir); err != nil {
		probe = filepath.Dir(dir)
	}
	if err := unix.Access(probe, unix.W_OK); err != nil {
		if explicit {
			return nil, fmt.Errorf("unable to apply cgroup configuration: %s: permission denied (rootless: no delegated cgroup there for uid %d)", probe, os.Geteuid())
		}
		return &noCgroup{why: fmt.Sprintf("no delegated cgroup: %s is not writable by uid %d", probe, os.Geteuid())}, nil
	}
	explain.Stepf("cgroups.New", "rootless: delegated cgroup v2 subtree, group %s", dir)
	return &v2{path: clean, dir: dir, rootless: true}, nil
}

// ownV2Group is the calling process's group in the unified hierarchy ("0::/path").
func ownV2Group() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return rest, nil
		}
	}
	return "", errors.New("/proc/self/cgroup: no cgroup v2 entry")
}

// noCgroup is a rootless container without a cgroup. Its state records an empty cgroupPath.
type noCgroup struct{ why string }

func (n *noCgroup) Path() string { return "" }
func (n *noCgroup) Create() error {
	explain.Stepf("cgroups.Create", "rootless: no cgroup (%s)", n.reason())
	return nil
}

func (n *noCgroup) reason() string {
	if n.why == "" {
		return "created rootless, without one"
	}
	return n.why
}

// Set refuses any limit, naming the field; device rules are ignored (see above).
func (n *noCgroup) Set(r *specs.LinuxResources) error {
	if field, sub := firstLimit(r); field != "" {
		return fmt.Errorf("%s: cannot set %s limit: container could not join or create cgroup (%s)", field, sub, n.reason())
	}
	return nil
}
func (n *noCgroup) Apply(int) error       { return nil }
func (n *noCgroup) JoinFiles() []string   { return nil }
func (n *noCgroup) Freeze() error         { return n.refuse("freezing") }
func (n *noCgroup) Thaw() error           { return n.refuse("thawing") }
func (n *noCgroup) Paused() (bool, error) { return false, nil }
func (n *noCgroup) Pids() ([]int, error)  { return nil, n.refuse("listing its processes") }
func (n *noCgroup) Stats() (*Stats, error) {
	return nil, n.refuse("reading usage")
}
func (n *noCgroup) KillAll() error { return nil } // the pid namespace goes with its init
func (n *noCgroup) Sub(map[string]string) (Manager, error) {
	return nil, n.refuse("exec --cgroup")
}
func (n *noCgroup) Destroy() error { return nil }

func (n *noCgroup) refuse(what string) error {
	return fmt.Errorf("%s needs the container's cgroup, and it has none (%s)", what, n.reason())
}

// IsNone says whether a manager stands for no cgroup at all (a rootless container without one).
func IsNone(m Manager) bool {
	_, ok := m.(*noCgroup)
	return ok
}

// CheckFor is Check for a given manager: a rootless container without a cgroup refuses any
// limit before anything is made.
func CheckFor(m Manager, r *specs.LinuxResources) error {
	if n, ok := m.(*noCgroup); ok {
		return n.Set(r)
	}
	return Check(r)
}

// firstLimit names the first limit r asks for (its field, and runc's name for its kind), or "".
func firstLimit(r *specs.LinuxResources) (string, string) {
	if r == nil {
		return "", ""
	}
	set64 := func(p *int64) bool { return p != nil && *p != 0 }
	setU := func(p *uint64) bool { return p != nil && *p != 0 }
	if m := r.Memory; m != nil {
		switch {
		case set64(m.Limit):
			return "linux.resources.memory.limit", "memory"
		case set64(m.Reservation):
			return "linux.resources.memory.reservation", "memory"
		case set64(m.Swap):
			return "linux.resources.memory.swap", "memory"
		case set64(m.Kernel) || set64(m.KernelTCP):
			return "linux.resources.memory.kernel", "memory"
		case m.Swappiness != nil:
			return "linux.resources.memory.swappiness", "memory"
		case m.DisableOOMKiller != nil && *m.DisableOOMKiller:
			return "linux.resources.memory.disableOOMKiller", "memory"
		}
	}
	if c := r.CPU; c != nil {
		switch {
		case setU(c.Shares):
			return "linux.resources.cpu.shares", "cpu"
		case set64(c.Quota):
			return "linux.resources.cpu.quota", "cpu"
		case setU(c.Period):
			return "linux.resources.cpu.period", "cpu"
		case set64(c.RealtimeRuntime) || setU(c.RealtimePeriod):
			return "linux.resources.cpu.realtimeRuntime", "cpu"
		case c.Cpus != "":
			return "linux.resources.cpu.cpus", "cpuset"
		case c.Mems != "":
			return "linux.resources.cpu.mems", "cpuset"
		case c.Idle != nil && *c.Idle != 0:
			return "linux.resources.cpu.idle", "cpu"
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit != 0 {
		return "linux.resources.pids.limit", "pids"
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice)+len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0) {
		return "linux.resources.blockIO", "blkio"
	}
	if len(r.HugepageLimits) > 0 {
		return "linux.resources.hugepageLimits", "hugetlb"
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return "linux.resources.network", "net"
	}
	if len(r.Rdma) > 0 {
		return "linux.resources.rdma", "rdma"
	}
	if len(r.Unified) > 0 {
		return "linux.resources.unified", "unified"
	}
	return "", ""
}
