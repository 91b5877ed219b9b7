package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/mountinfo"
)

// v1 is a group present in every v1 hierarchy of the host. On a hybrid host it also has a
// group in the cgroup2 tree (unified), as with runc: the process is cloned straight into it
// (CLONE_INTO_CGROUP), since a move through cgroup.procs would cost an RCU grace period
// (milliseconds) on every container start.
type v1 struct {
	path    string
	dirs    map[string]string // controller (or "name=systemd") -> directory
	unified string            // the group in a hybrid host's cgroup2 tree, or ""
	// rootless: a cgroupsPath named by a rootless config (cgroups/rootless.go)
	rootless bool
	// madeDevices: Create made the devices group itself, so it holds only what this
	// create put there (its init, which waits on its pipe while limits are written).
	madeDevices bool
}

func newV1(path string) (*v1, error) {
	l, err := v1Hierarchies()
	if err != nil {
		return nil, err
	}
	m := &v1{path: path, dirs: make(map[string]string, len(l.points))}
	for ctrl, point := range l.points {
		m.dirs[ctrl] = filepath.Join(point, path)
	}
	if l.unified != "" {
		m.unified = filepath.Join(l.unified, path)
	}
	return m, nil
}

// v1Layout is where this host's hierarchies are mounted: controller (or "name=...") to mount
// point, and a hybrid host's cgroup2 mount point.
type v1Layout struct {
	points  map[string]string
	unified string
}

// v1Hierarchies reads the layout once a process: every group a berth process opens (create's,
// then the same container's at delete, in a run) is in the same hierarchies, and nothing a
// berth process does mounts or unmounts one.
var v1Hierarchies = sync.OnceValues(func() (v1Layout, error) {
	l := v1Layout{points: map[string]string{}}
	mounts, err := mountinfo.Cgroups()
	if err != nil {
		return l, err
	}
	// Only the mount a lookup reaches counts: a cgroup2 tree hidden under a tmpfs (crun's
	// recipe for hybrid hosts) is not this host's, and cloning into it fails.
	for _, mt := range mountinfo.Visible(mounts) {
		if !strings.HasPrefix(mt.Point, root+"/") {
			continue
		}
		switch mt.FSType {
		case "cgroup2":
			l.unified = mt.Point
		case "cgroup":
			for _, opt := range strings.Split(mt.SuperOptions, ",") {
				switch {
				case opt == "rw" || opt == "ro" || opt == "clone_children" || opt == "noprefix" || strings.HasPrefix(opt, "release_agent="):
				default:
					l.points[opt] = mt.Point
				}
			}
		}
	}
	if len(l.points) == 0 {
		return l, errors.New("no cgroup hierarchy is mounted under /sys/fs/cgroup")
	}
	return l, nil
})

// V1Dirs is the group at path in each cgroup v1 hierarchy (controller, or name=..., to its
// directory); empty on a pure v2 host.
func V1Dirs(path string) map[string]string {
	m, err := newV1(path)
	if err != nil {
		return map[string]string{}
	}
	return m.dirs
}

func (m *v1) Path() string { return m.path }

// uniqueDirs lists each directory once (co-mounted controllers share one).
func (m *v1) uniqueDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range m.dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func (m *v1) Create() error {
	if d, ok := m.dirs["devices"]; ok {
		_, err := os.Lstat(d)
		m.madeDevices = errors.Is(err, fs.ErrNotExist)
	}
	for _, d := range m.uniqueDirs() {
		explain.Stepf("cgroups.Create", "mkdir -p %s", d)
		if err := mkdirAll(d); err != nil {
			if m.rootless {
				// runc's words for a cgroupsPath a rootless container may not use.
				return fmt.Errorf("unable to apply cgroup configuration: %w", err)
			}
			return err
		}
	}
	if m.unified != "" {
		explain.Stepf("cgroups.Create", "mkdir -p %s", m.unified)
		if err := mkdirAll(m.unified); err != nil {
			return err
		}
	}
	if d, ok := m.dirs["cpuset"]; ok {
		// A new cpuset group starts with no cpus and no memory nodes: no task may join
		// it until they are copied down from the parent.
		return inheritCpuset(d)
	}
	return nil
}

func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if v != "" {
			continue
		}
		parent := filepath.Dir(dir)
		pv, err := readFile(parent, f)
		if err == nil && pv == "" && parent != filepath.Join(root, "cpuset") {
			if err := inheritCpuset(parent); err != nil {
				return err
			}
			pv, err = readFile(parent, f)
		}
		if err != nil {
			return err
		}
		if err := writeFile(dir, f, pv); err != nil {
			return err
		}
	}
	return nil
}

// Set writes linux.resources into the v1 hierarchies; a field whose controller the host does
// not mount, or which v1 cannot hold, is an error naming it.
//
//	linux.resources field       cgroup v1 file
//	---------------------       --------------
//	memory.limit                memory.limit_in_bytes
//	memory.reservation          memory.soft_limit_in_bytes
//	memory.swap                 memory.memsw.limit_in_bytes (memory+swap, as the spec means it;
//	                            written before the limit when the limit grows past the old one)
//	memory.kernel               ignored with a warning (as runc: removed from the kernel)
//	memory.kernelTCP            memory.kmem.tcp.limit_in_bytes
//	memory.swappiness           memory.swappiness
//	memory.disableOOMKiller     memory.oom_control = 1
//	memory.useHierarchy         memory.use_hierarchy
//	cpu.shares                  cpu.shares
//	cpu.period, cpu.quota       cpu.cfs_period_us, cpu.cfs_quota_us
//	cpu.burst                   cpu.cfs_burst_us
//	cpu.realtimePeriod/Runtime  cpu.rt_period_us, cpu.rt_runtime_us
//	cpu.idle                    cpu.idle
//	cpu.cpus, cpu.mems          cpuset.cpus, cpuset.mems
//	pids.limit                  pids.max (>0, else "max")
//	blockIO.weight/leafWeight   blkio.weight/leaf_weight (blkio.bfq.weight under BFQ)
//	blockIO.weightDevice        blkio.weight_device (blkio.bfq.weight_device) "MAJ:MIN W"
//	blockIO.throttle*Device     blkio.throttle.{read,write}_{bps,iops}_device "MAJ:MIN N"
//	hugepageLimits              hugetlb.<size>.limit_in_bytes
//	network.classID             net_cls.classid
//	network.priorities          net_prio.ifpriomap "<if> <prio>"
//	rdma                        rdma.max
//	devices                     devices.deny/devices.allow, replayed in order
//	unified                     error: cgroup v2 only
func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return errV1Unified
	}
	if err := m.setMemory(r.Memory); err != nil {
		return err
	}
	if err := m.setCPU(r.CPU); err != nil {
		return err
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := m.write("pids", "pids.max", v, "linux.resources.pids.limit"); err != nil {
			return err
		}
	}
	if err := m.setBlkio(r.BlockIO); err != nil {
		return err
	}
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		if h.Pagesize == "" || strings.ContainsAny(h.Pagesize, "/. \x00") {
			return fmt.Errorf("%s.pageSize: %q is not a page size such as 2MB", field, h.Pagesize)
		}
		if err := m.write("hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10), field); err != nil {
			return err
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			if err := m.write("net_cls", "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10), "linux.resources.network.classID"); err != nil {
				return err
			}
		}
		for i, p := range n.Priorities {
			if err := m.write("net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority), fmt.Sprintf("linux.resources.network.priorities[%d]", i)); err != nil {
				return err
			}
		}
	}
	for _, dev := range sortedKeys(r.Rdma) {
		l := r.Rdma[dev]
		v := dev + " hca_handle=" + maxOr(l.HcaHandles) + " hca_object=" + maxOr(l.HcaObjects)
		if err := m.write("rdma", "rdma.max", v, fmt.Sprintf("linux.resources.rdma[%q]", dev)); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 && !m.rootless { // an ordinary user may not write device rules (runc skips them)
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	return nil
}

// write writes one file of a controller's group, naming field in any error.
func (m *v1) write(controller, file, value, field string) error {
	d, ok := m.dirs[controller]
	if !ok {
		return fmt.Errorf("%s: the host mounts no %s cgroup controller", field, controller)
	}
	if err := writeFile(d, file, value); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %s does not exist on this kernel: %w", field, file, err)
		}
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil && *mem.Kernel != 0 {
		logrus.Warn("linux.resources.memory.kernel: kernel memory limits are not supported by the kernel any more; ignored")
	}
	limit, swap := int64(0), int64(0)
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if d, ok := m.dirs["memory"]; ok {
			if cur, err := readFile(d, "memory.usage_in_bytes"); err == nil && parseUint(cur) >= uint64(limit) {
				return fmt.Errorf("linux.resources.memory.limit: %d is not above the group's current usage %s (checkBeforeUpdate)", limit, cur)
			}
		}
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return m.write("memory", "memory.limit_in_bytes", strconv.FormatInt(limit, 10), "linux.resources.memory.limit")
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return m.write("memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10), "linux.resources.memory.swap")
	}
	// memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: when both grow,
	// memsw goes first.
	if err := writeLimit(); err != nil {
		if swap == 0 || !errors.Is(err, unix.EINVAL) {
			return err
		}
		if err := writeSwap(); err != nil {
			return err
		}
		if err := writeLimit(); err != nil {
			return err
		}
	} else if err := writeSwap(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := m.write("memory", "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10), "linux.resources.memory.reservation"); err != nil {
			return err
		}
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		if err := m.write("memory", "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10), "linux.resources.memory.kernelTCP"); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("linux.resources.memory.swappiness: %d is above 100", *mem.Swappiness)
		}
		if err := m.write("memory", "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10), "linux.resources.memory.swappiness"); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := m.write("memory", "memory.oom_control", "1", "linux.resources.memory.disableOOMKiller"); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		if cur, err := readFile(m.dirs["memory"], "memory.use_hierarchy"); err != nil || cur != v {
			if err := m.write("memory", "memory.use_hierarchy", v, "linux.resources.memory.useHierarchy"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setCPU(cpu *specs.LinuxCPU) error {
	if cpu == nil {
		return nil
	}
	type w struct {
		ctrl, file, value, field string
	}
	var ws []w
	if cpu.Shares != nil && *cpu.Shares != 0 {
		ws = append(ws, w{"cpu", "cpu.shares", strconv.FormatUint(*cpu.Shares, 10), "linux.resources.cpu.shares"})
	}
	for _, x := range ws {
		if err := m.write(x.ctrl, x.file, x.value, x.field); err != nil {
			return err
		}
	}
	ws = ws[:0]
	// A period and its quota (or real-time runtime) are checked together, against the
	// parent's: the new period with the old quota may be refused (EINVAL) where the new pair
	// is fine, e.g. lowering both in a pod whose group has a limit. The period is then
	// written again after the quota.
	var period, quota *w
	if cpu.Period != nil && *cpu.Period != 0 {
		period = &w{"cpu", "cpu.cfs_period_us", strconv.FormatUint(*cpu.Period, 10), "linux.resources.cpu.period"}
	}
	if cpu.Quota != nil && *cpu.Quota != 0 {
		quota = &w{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(*cpu.Quota, 10), "linux.resources.cpu.quota"}
	}
	var rtPeriod, rtRuntime *w
	if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
		rtPeriod = &w{"cpu", "cpu.rt_period_us", strconv.FormatUint(*cpu.RealtimePeriod, 10), "linux.resources.cpu.realtimePeriod"}
	}
	if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
		rtRuntime = &w{"cpu", "cpu.rt_runtime_us", strconv.FormatInt(*cpu.RealtimeRuntime, 10), "linux.resources.cpu.realtimeRuntime"}
	}
	pairs := []struct{ period, amount *w }{{period, quota}, {rtPeriod, rtRuntime}}
	for _, p := range pairs {
		retry := false
		if p.period != nil {
			if err := m.write(p.period.ctrl, p.period.file, p.period.value, p.period.field); err != nil {
				if !errors.Is(err, unix.EINVAL) || p.amount == nil {
					return err
				}
				retry = true
			}
		}
		if p.amount != nil {
			if err := m.write(p.amount.ctrl, p.amount.file, p.amount.value, p.amount.field); err != nil {
				return err
			}
		}
		if retry {
			if err := m.write(p.period.ctrl, p.period.file, p.period.value, p.period.field); err != nil {
				return err
			}
		}
	}
	if cpu.Burst != nil {
		ws = append(ws, w{"cpu", "cpu.cfs_burst_us", strconv.FormatUint(*cpu.Burst, 10), "linux.resources.cpu.burst"})
	}
	if cpu.Idle != nil {
		ws = append(ws, w{"cpu", "cpu.idle", strconv.FormatInt(*cpu.Idle, 10), "linux.resources.cpu.idle"})
	}
	if cpu.Cpus != "" {
		ws = append(ws, w{"cpuset", "cpuset.cpus", cpu.Cpus, "linux.resources.cpu.cpus"})
	}
	if cpu.Mems != "" {
		ws = append(ws, w{"cpuset", "cpuset.mems", cpu.Mems, "linux.resources.cpu.mems"})
	}
	for _, x := range ws {
		if err := m.write(x.ctrl, x.file, x.value, x.field); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setBlkio(io *specs.LinuxBlockIO) error {
	if io == nil {
		return nil
	}
	// Under BFQ the weight files carry a "bfq." prefix.
	prefix := "blkio."
	if d, ok := m.dirs["blkio"]; ok {
		if _, err := os.Stat(filepath.Join(d, "blkio.weight")); err != nil {
			if _, err := os.Stat(filepath.Join(d, "blkio.bfq.weight")); err == nil {
				prefix = "blkio.bfq."
			}
		}
	}
	if io.Weight != nil && *io.Weight != 0 {
		if err := m.write("blkio", prefix+"weight", strconv.Itoa(int(*io.Weight)), "linux.resources.blockIO.weight"); err != nil {
			return err
		}
	}
	if io.LeafWeight != nil && *io.LeafWeight != 0 {
		if err := m.write("blkio", "blkio.leaf_weight", strconv.Itoa(int(*io.LeafWeight)), "linux.resources.blockIO.leafWeight"); err != nil {
			return err
		}
	}
	for i, d := range io.WeightDevice {
		field := fmt.Sprintf("linux.resources.blockIO.weightDevice[%d]", i)
		if d.Weight != nil {
			if err := m.write("blkio", prefix+"weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight), field); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil {
			if err := m.write("blkio", "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight), field); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		field, file string
		devs        []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", io.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", io.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", io.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", io.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for i, d := range t.devs {
			v := fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)
			if err := m.write("blkio", t.file, v, fmt.Sprintf("linux.resources.blockIO.%s[%d]", t.field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices replays linux.resources.devices into devices.allow/deny in order.
//
// Rules are runc's default deny: unless the first rule is a wildcard ("a", which resets the
// group to all-denied or all-allowed), "devices.deny a" goes first, so that v1 allows exactly
// what the device program allows on v2. (A group starts with its parent's list, usually
// everything.) A group that holds processes (an update) is frozen meanwhile, so that none of
// them meets the moment between the reset and the rule that allows its device again.
func (m *v1) setDevices(rules []specs.LinuxDeviceCgroup) error {
	parsed, err := parseDeviceRules(rules, true)
	if err != nil {
		return err
	}
	d, ok := m.dirs["devices"]
	if !ok {
		return errors.New("linux.resources.devices: the host mounts no devices cgroup controller")
	}
	if m.madeDevices {
		// The create that made the group: its only process is the init, which touches no
		// device until berth says "go". Freezing it (~1.3 ms: the v1 freezer is polled)
		// would protect nothing.
		explain.Stepf("cgroups.v1.setDevices", "%s: no freeze, the group is new and its init waits", d)
	} else if pids, _ := readPids(filepath.Join(d, "cgroup.procs")); len(pids) > 0 {
		// Best effort: a group that will not freeze is left running (Freeze thaws it
		// again) and its rules are rewritten all the same.
		if frozen, err := m.Paused(); err == nil && !frozen && m.Freeze() == nil {
			defer func() { _ = m.Thaw() }()
		}
	}
	w := newFileWriter(d)
	defer w.close()
	if parsed[0].typ != 0 {
		if err := w.write("devices.deny", "a"); err != nil {
			return fmt.Errorf("linux.resources.devices: %w", err)
		}
	}
	for i, r := range parsed {
		if r.typ != 0 && r.access == 0 {
			continue // only letters v1 passes over: the rule grants and denies nothing
		}
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		if err := w.write(file, r.v1String()); err != nil {
			return fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
	}
	return nil
}

func (m *v1) Apply(pid int) error {
	for _, d := range m.uniqueDirs() {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) JoinFiles() []string {
	var out []string
	for _, d := range m.uniqueDirs() {
		out = append(out, filepath.Join(d, "tasks"))
	}
	return out
}

func (m *v1) Freeze() error { return m.setFreezer("FROZEN") }
func (m *v1) Thaw() error   { return m.setFreezer("THAWED") }

// setFreezer writes freezer.state and waits until the group reaches it.
//
// A v1 group can stay FREEZING for ever: a multi-threaded process calling execve (an exec'd
// "berth init" becoming the user's program, say) waits in the kernel for its other threads to
// exit, which they cannot do once frozen, and that wait is not itself freezable. So a freeze
// that does not complete within a few tries is undone (THAWED, letting the execve finish) and
// tried again; one that never completes leaves the group thawed and says so.
func (m *v1) setFreezer(state string) error {
	d, ok := m.dirs["freezer"]
	if !ok {
		return errors.New("no freezer controller on this host")
	}
	for i := 0; i < 1000; i++ {
		if state == "FROZEN" && i > 0 && i%25 == 0 {
			if err := writeFile(d, "freezer.state", "THAWED"); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		if err := writeFile(d, "freezer.state", state); err != nil {
			return err
		}
		cur, err := readFile(d, "freezer.state")
		if err != nil {
			return err
		}
		if cur == state {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	if state == "FROZEN" {
		_ = writeFile(d, "freezer.state", "THAWED")
	}
	return fmt.Errorf("freezer did not reach %s", state)
}

func (m *v1) Paused() (bool, error) {
	d, ok := m.dirs["freezer"]
	if !ok {
		return false, nil
	}
	s, err := readFile(d, "freezer.state")
	return s == "FROZEN", err
}

func (m *v1) procsFile() string {
	for _, c := range []string{"pids", "memory", "cpu", "freezer"} {
		if d, ok := m.dirs[c]; ok {
			return filepath.Join(d, "cgroup.procs")
		}
	}
	return filepath.Join(m.uniqueDirs()[0], "cgroup.procs")
}

// Pids lists the processes of the group and of the groups nested in it.
func (m *v1) Pids() ([]int, error) { return allPids(filepath.Dir(m.procsFile())) }

// KillAll freezes the group so nothing can fork, kills every member, and thaws it so the
// kills are delivered.
func (m *v1) KillAll() error {
	for i := 0; i < 100; i++ {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			return err
		}
		frozen := m.Freeze() == nil
		for _, p := range pids {
			explain.Stepf("cgroups.KillAll", "kill -9 %d", p)
			_ = unix.Kill(p, unix.SIGKILL)
		}
		if frozen {
			_ = m.Thaw()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("processes survive in the cgroup after SIGKILL")
}

func (m *v1) Stats() (*Stats, error) {
	s := &Stats{}
	if d, ok := m.dirs["memory"]; ok {
		if _, err := os.Stat(d); err != nil {
			return nil, err
		}
		u, _ := readFile(d, "memory.usage_in_bytes")
		l, _ := readFile(d, "memory.limit_in_bytes")
		mx, _ := readFile(d, "memory.max_usage_in_bytes")
		fc, _ := readFile(d, "memory.failcnt")
		s.Memory.Usage = MemoryEntry{Usage: parseUint(u), Limit: parseUint(l), Max: parseUint(mx), Failcnt: parseUint(fc)}
		su, _ := readFile(d, "memory.memsw.usage_in_bytes")
		sl, _ := readFile(d, "memory.memsw.limit_in_bytes")
		s.Memory.Swap = MemoryEntry{Usage: parseUint(su), Limit: parseUint(sl)}
		s.Memory.Raw = readKeyed(d, "memory.stat")
		s.Memory.Cache = s.Memory.Raw["cache"]
	}
	if d, ok := m.dirs["pids"]; ok {
		c, _ := readFile(d, "pids.current")
		l, _ := readFile(d, "pids.max")
		s.Pids = PidsStats{Current: parseUint(c), Limit: parseUint(l)}
	}
	if d, ok := m.dirs["cpuacct"]; ok {
		t, _ := readFile(d, "cpuacct.usage")
		u, _ := readFile(d, "cpuacct.usage_user")
		k, _ := readFile(d, "cpuacct.usage_sys")
		s.CPU.Usage.Total, s.CPU.Usage.User, s.CPU.Usage.Kernel = parseUint(t), parseUint(u), parseUint(k)
	}
	if d, ok := m.dirs["cpu"]; ok {
		st := readKeyed(d, "cpu.stat")
		s.CPU.Throttling.Periods = st["nr_periods"]
		s.CPU.Throttling.ThrottledPeriods = st["nr_throttled"]
		s.CPU.Throttling.ThrottledTime = st["throttled_time"]
	}
	if d, ok := m.dirs["blkio"]; ok {
		s.Blkio.IoServiceBytesRecursive = readBlkio(d, "blkio.throttle.io_service_bytes_recursive")
		s.Blkio.IoServicedRecursive = readBlkio(d, "blkio.throttle.io_serviced_recursive")
	}
	if d, ok := m.dirs["hugetlb"]; ok {
		for _, size := range hugePageSizes() {
			u, err := readFile(d, "hugetlb."+size+".usage_in_bytes")
			if err != nil {
				continue
			}
			mx, _ := readFile(d, "hugetlb."+size+".max_usage_in_bytes")
			fc, _ := readFile(d, "hugetlb."+size+".failcnt")
			if s.Hugetlb == nil {
				s.Hugetlb = map[string]HugetlbStats{}
			}
			s.Hugetlb[size] = HugetlbStats{Usage: parseUint(u), Max: parseUint(mx), Failcnt: parseUint(fc)}
		}
	}
	return s, nil
}

// readBlkio parses "MAJ:MIN Op N" lines, keeping Read and Write.
func readBlkio(dir, file string) []BlkioEntry {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	var out []BlkioEntry
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || (f[1] != "Read" && f[1] != "Write") {
			continue
		}
		var major, minor uint64
		if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: major, Minor: minor, Op: f[1], Value: parseUint(f[2])})
	}
	return out
}

func (m *v1) Destroy() error {
	if _, err := os.Stat(m.procsFile()); err == nil {
		if err := m.KillAll(); err != nil {
			return err
		}
	}
	var errs []error
	dirs := m.uniqueDirs()
	if m.unified != "" {
		dirs = append(dirs, m.unified)
	}
	for _, d := range dirs {
		if err := removeDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CloneIntoDir is the group in a hybrid host's cgroup2 tree, for CLONE_INTO_CGROUP; none when
// that directory is not on a cgroup2 filesystem (a v1-only host never clones into one).
func (m *v1) CloneIntoDir() (string, bool) {
	if m.unified == "" {
		return "", false
	}
	var st unix.Statfs_t
	if unix.Statfs(m.unified, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return "", false
	}
	return m.unified, true
}
