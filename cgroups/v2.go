package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// v2 is a group in the unified hierarchy.
type v2 struct {
	path string
	dir  string
	// rootless: a delegated subtree (rootless.go); device rules are not enforced (no eBPF).
	rootless bool
}

func (m *v2) Path() string { return m.path }

// Create makes the group and enables, in every ancestor's cgroup.subtree_control, the
// controllers the group's limits need (a v2 controller only appears in a child once its parent
// delegates it). berth asks for every controller the parent has; one the kernel refuses to
// delegate (cpu while a real-time task sits in a child, say) is left out, and a limit that
// needs it then fails with the name of its field.
func (m *v2) Create() error {
	explain.Stepf("cgroups.Create", "mkdir -p %s", m.dir)
	if err := mkdirAll(m.dir); err != nil {
		return err
	}
	rel := strings.Split(strings.Trim(m.path, "/"), "/")
	dir := root
	for _, part := range rel {
		if err := enableControllers(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
	}
	return nil
}

// enableControllers delegates every controller of dir to its children.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	enabled := map[string]bool{}
	for _, c := range strings.Fields(on) {
		enabled[c] = true
	}
	var want []string
	for _, c := range strings.Fields(avail) {
		if !enabled[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return nil
	}
	// One at a time, so that one refusal does not cost the others.
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c)
	}
	return nil
}

// Set translates linux.resources (shaped after cgroup v1) into cgroup v2 files, as runc and
// crun do. Every field is either written or refused with an error naming it; nothing is
// dropped silently, except memory.kernel, which the kernel no longer has anywhere (a warning).
//
//	linux.resources field          cgroup v2 file          conversion
//	---------------------          --------------          ----------
//	memory.limit                   memory.max              bytes; -1 -> "max"; 0 = unset
//	memory.reservation             memory.low              bytes; -1 -> "max"; 0 = unset
//	memory.swap                    memory.swap.max         spec is memory+swap, v2 is swap alone:
//	                                                       swap-limit (-1 -> "max"; needs limit)
//	memory.checkBeforeUpdate       (reads memory.current)  refuses a limit below current usage
//	memory.disableOOMKiller=true   -                       error: v2 cannot disable the OOM killer
//	memory.kernel                  -                       ignored with a warning (as runc)
//	memory.kernelTCP               -                       error (v1 only)
//	memory.swappiness              -                       error (v1 only)
//	memory.useHierarchy=false      -                       error (v2 is always hierarchical)
//	unified["memory.oom.group"]    memory.oom.group        raw (the spec has no field for it)
//	cpu.shares                     cpu.weight              runc's curve through (2,1), (1024,100),
//	                                                       (262144,10000)
//	cpu.quota, cpu.period          cpu.max                 "<quota|max> <period>" (period 100000)
//	cpu.burst                      cpu.max.burst           µs (retried after cpu.max, as runc)
//	cpu.idle                       cpu.idle                as is
//	cpu.realtimeRuntime/Period     -                       error (no RT bandwidth in v2)
//	cpu.cpus, cpu.mems             cpuset.cpus/.mems       as is
//	pids.limit                     pids.max                >0 as is, else "max"
//	blockIO.weight                 io.bfq.weight           as is, when BFQ is loaded;
//	                               io.weight               else 1+(w-10)*9999/990 ("default N")
//	blockIO.weightDevice           io.bfq.weight           "MAJ:MIN W" (BFQ), else io.weight
//	                                                       "MAJ:MIN W'" (converted as above)
//	blockIO.leafWeight (any)       -                       error (v1 CFQ only)
//	blockIO.throttle*Device        io.max                  "MAJ:MIN rbps|wbps|riops|wiops=N"
//	hugepageLimits                 hugetlb.<size>.max      bytes (+ hugetlb.<size>.rsvd.max)
//	rdma                           rdma.max                "<dev> hca_handle=N hca_object=M"
//	network.classID/priorities     -                       error (net_cls/net_prio are v1 only)
//	devices                        BPF program             see devices_ebpf.go
//	unified                        <key>                   raw, last; key must be a file name of
//	                                                       the group, not one moving processes
func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := checkV2(r); err != nil {
		return err
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
		if err := m.set("pids.max", v); err != nil {
			return fmt.Errorf("linux.resources.pids.limit: %w", err)
		}
	}
	if err := m.setIO(r.BlockIO); err != nil {
		return err
	}
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		if h.Pagesize == "" || strings.ContainsAny(h.Pagesize, "/. \x00") {
			return fmt.Errorf("%s.pageSize: %q is not a page size such as 2MB", field, h.Pagesize)
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := m.set("hugetlb."+h.Pagesize+".max", v); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s: the kernel has no %s huge pages (or no hugetlb controller)", field, h.Pagesize)
			}
			return fmt.Errorf("%s: %w", field, err)
		}
		// The reservation limit too (kernel 5.7+), so that a mapping cannot reserve past it.
		if err := m.set("hugetlb."+h.Pagesize+".rsvd.max", v); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	for _, dev := range sortedKeys(r.Rdma) {
		l := r.Rdma[dev]
		if dev == "" || strings.ContainsAny(dev, " \n\x00") {
			return fmt.Errorf("linux.resources.rdma[%q]: not a device name", dev)
		}
		v := dev + " hca_handle=" + maxOr(l.HcaHandles) + " hca_object=" + maxOr(l.HcaObjects)
		if err := m.set("rdma.max", v); err != nil {
			return fmt.Errorf("linux.resources.rdma[%q]: %w", dev, err)
		}
	}
	if len(r.Devices) > 0 && !m.rootless {
		if err := setDevicesBPF(m.dir, r.Devices); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(r.Unified) {
		if err := m.set(k, r.Unified[k]); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("linux.resources.unified[%q]: no such file in the group (controller %q not enabled, or unknown key)", k, strings.SplitN(k, ".", 2)[0])
			}
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	return nil
}

// checkV2 refuses, before anything is written, what cgroup v2 cannot express.
func checkV2(r *specs.LinuxResources) error {
	if mem := r.Memory; mem != nil {
		switch {
		case mem.DisableOOMKiller != nil && *mem.DisableOOMKiller:
			return errors.New("linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer (set it to false or leave it out)")
		case mem.KernelTCP != nil:
			return errors.New("linux.resources.memory.kernelTCP: kernel TCP memory limits exist only on cgroup v1")
		case mem.Swappiness != nil:
			return errors.New("linux.resources.memory.swappiness: cgroup v2 has no per-group swappiness")
		case mem.UseHierarchy != nil && !*mem.UseHierarchy:
			return errors.New("linux.resources.memory.useHierarchy: cgroup v2 is always hierarchical (false cannot be honoured)")
		}
	}
	if cpu := r.CPU; cpu != nil {
		if (cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0) || (cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0) {
			return errors.New("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no real-time CPU bandwidth")
		}
	}
	if io := r.BlockIO; io != nil {
		if io.LeafWeight != nil {
			return errors.New("linux.resources.blockIO.leafWeight: exists only on cgroup v1")
		}
		for i, d := range io.WeightDevice {
			if d.LeafWeight != nil {
				return fmt.Errorf("linux.resources.blockIO.weightDevice[%d].leafWeight: exists only on cgroup v1", i)
			}
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return errors.New("linux.resources.network: net_cls and net_prio exist only on cgroup v1")
	}
	for k := range r.Unified {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
	}
	return nil
}

// checkUnifiedKey accepts a plain file name of the group: no path, and none of the files that
// move or kill processes or reshape the tree.
func checkUnifiedKey(k string) error {
	switch {
	case k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00"):
		return fmt.Errorf("linux.resources.unified[%q]: not a cgroup file name", k)
	case !strings.Contains(k, "."):
		return fmt.Errorf("linux.resources.unified[%q]: not a cgroup file name (<controller>.<file>)", k)
	}
	switch k {
	case "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.subtree_control", "cgroup.type", "cgroup.freeze":
		return fmt.Errorf("linux.resources.unified[%q]: berth manages that file itself", k)
	}
	return nil
}

func (m *v2) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	get := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	if mem.Kernel != nil && *mem.Kernel != 0 {
		logrus.Warn("linux.resources.memory.kernel: kernel memory limits are not supported by the kernel any more; ignored")
	}
	limit, swap, low := get(mem.Limit), get(mem.Swap), get(mem.Reservation)
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if cur, err := readFile(m.dir, "memory.current"); err == nil && parseUint(cur) >= uint64(limit) {
			return fmt.Errorf("linux.resources.memory.limit: %d is not above the group's current usage %s (checkBeforeUpdate)", limit, cur)
		}
	}
	// The spec's swap is v1's memory+swap; memory.swap.max is swap alone.
	if swap != 0 || limit == -1 {
		var v string
		switch {
		case swap == -1 || (swap == 0 && limit == -1) || (swap > 0 && limit == -1):
			v = "max"
			if swap > 0 {
				v = strconv.FormatInt(swap, 10)
			}
		case limit == 0:
			return errors.New("linux.resources.memory.swap: cgroup v2 needs memory.limit too (swap is memory+swap)")
		case swap < limit:
			return fmt.Errorf("linux.resources.memory.swap: %d is below memory.limit %d (swap is memory+swap)", swap, limit)
		default:
			v = strconv.FormatInt(swap-limit, 10)
		}
		if err := m.set("memory.swap.max", v); err != nil {
			// No swap in the kernel: "no swap" and "any swap" both hold already.
			if !(errors.Is(err, os.ErrNotExist) && (v == "max" || v == "0")) {
				return fmt.Errorf("linux.resources.memory.swap: %w", err)
			}
		}
	}
	if limit != 0 {
		if err := m.set("memory.max", limitValue(limit)); err != nil {
			return fmt.Errorf("linux.resources.memory.limit: %w", err)
		}
	}
	if low != 0 {
		if err := m.set("memory.low", limitValue(low)); err != nil {
			return fmt.Errorf("linux.resources.memory.reservation: %w", err)
		}
	}
	return nil
}

func (m *v2) setCPU(cpu *specs.LinuxCPU) error {
	if cpu == nil {
		return nil
	}
	if cpu.Idle != nil {
		if err := m.set("cpu.idle", strconv.FormatInt(*cpu.Idle, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.idle: %w", err)
		}
	}
	if cpu.Shares != nil && *cpu.Shares != 0 {
		w := SharesToWeight(*cpu.Shares)
		if err := m.set("cpu.weight", strconv.FormatUint(w, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.shares: %w", err)
		}
	}
	quotaSet := (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0)
	burst := ""
	if cpu.Burst != nil {
		burst = strconv.FormatUint(*cpu.Burst, 10)
		err := m.set("cpu.max.burst", burst)
		switch {
		case err == nil:
			burst = ""
		case errors.Is(err, unix.EINVAL) && quotaSet:
			// A burst above the current quota is refused: retried once cpu.max is set.
		default:
			return fmt.Errorf("linux.resources.cpu.burst: %w", err)
		}
	}
	if quotaSet {
		quota, period := "max", uint64(100000)
		if cpu.Quota != nil && *cpu.Quota > 0 {
			quota = strconv.FormatInt(*cpu.Quota, 10)
		}
		if cpu.Period != nil && *cpu.Period != 0 {
			period = *cpu.Period
		}
		if err := m.set("cpu.max", quota+" "+strconv.FormatUint(period, 10)); err != nil {
			return fmt.Errorf("linux.resources.cpu.quota/period: %w", err)
		}
		if burst != "" {
			if err := m.set("cpu.max.burst", burst); err != nil {
				return fmt.Errorf("linux.resources.cpu.burst: %w", err)
			}
		}
	}
	if cpu.Cpus != "" {
		if err := m.set("cpuset.cpus", cpu.Cpus); err != nil {
			return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
		}
	}
	if cpu.Mems != "" {
		if err := m.set("cpuset.mems", cpu.Mems); err != nil {
			return fmt.Errorf("linux.resources.cpu.mems: %w", err)
		}
	}
	return nil
}

// SharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000] with runc's (1.3+)
// curve, which keeps the default: 1024 shares give weight 100.
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	return uint64(math.Ceil(math.Pow(10, (l*l+125*l)/612.0-7.0/34.0)))
}

// BlkioToIOWeight maps blkio.weight [10, 1000] linearly onto io.weight [1, 10000].
func BlkioToIOWeight(w uint16) uint64 {
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

func (m *v2) setIO(io *specs.LinuxBlockIO) error {
	if io == nil {
		return nil
	}
	_, err := os.Stat(filepath.Join(m.dir, "io.bfq.weight"))
	bfq := err == nil
	if io.Weight != nil && *io.Weight != 0 {
		file, v := "io.weight", "default "+strconv.FormatUint(BlkioToIOWeight(*io.Weight), 10)
		if bfq {
			file, v = "io.bfq.weight", "default "+strconv.Itoa(int(*io.Weight))
		}
		if err := m.set(file, v); err != nil {
			return fmt.Errorf("linux.resources.blockIO.weight: %w", err)
		}
	}
	for i, d := range io.WeightDevice {
		if d.Weight == nil {
			continue
		}
		file, v := "io.weight", strconv.FormatUint(BlkioToIOWeight(*d.Weight), 10)
		if bfq {
			file, v = "io.bfq.weight", strconv.Itoa(int(*d.Weight))
		}
		if err := m.set(file, fmt.Sprintf("%d:%d %s", d.Major, d.Minor, v)); err != nil {
			return fmt.Errorf("linux.resources.blockIO.weightDevice[%d]: %w", i, err)
		}
	}
	throttles := []struct {
		field, key string
		devs       []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "rbps", io.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "wbps", io.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "riops", io.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "wiops", io.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for i, d := range t.devs {
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := m.set("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)); err != nil {
				return fmt.Errorf("linux.resources.blockIO.%s[%d]: %w", t.field, i, err)
			}
		}
	}
	return nil
}

func maxOr(p *uint32) string {
	if p == nil {
		return "max"
	}
	return strconv.FormatUint(uint64(*p), 10)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// set writes one file of the group. A missing file of a controller means the controller is not
// delegated to the group: the error says so.
func (m *v2) set(file, value string) error {
	err := writeFile(m.dir, file, value)
	if errors.Is(err, os.ErrNotExist) {
		ctrl, _, _ := strings.Cut(file, ".")
		if _, serr := os.Stat(m.dir); serr == nil {
			return fmt.Errorf("%w (is the %s controller enabled in %s/cgroup.subtree_control?)", err, ctrl, filepath.Dir(m.dir))
		}
	}
	return err
}

func limitValue(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (m *v2) Apply(pid int) error {
	return writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid))
}

// JoinFiles is empty: processes are cloned straight into the group (CloneIntoDir).
func (m *v2) JoinFiles() []string { return nil }

// CloneIntoDir is the group's directory, for clone3's CLONE_INTO_CGROUP: a process made there
// never migrates (writing cgroup.procs would cost an RCU grace period).
func (m *v2) CloneIntoDir() (string, bool) { return m.dir, true }

func (m *v2) Freeze() error { return m.setFrozen("1") }
func (m *v2) Thaw() error   { return m.setFrozen("0") }

func (m *v2) setFrozen(v string) error {
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	want := "frozen " + v
	for i := 0; i < 1000; i++ {
		ev, err := readFile(m.dir, "cgroup.events")
		if err != nil {
			return err
		}
		if strings.Contains(ev, want) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("cgroup.freeze did not take effect")
}

func (m *v2) Paused() (bool, error) {
	v, err := readFile(m.dir, "cgroup.freeze")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return v == "1", err
}

// Pids lists the processes of the group and of the groups nested in it.
func (m *v2) Pids() ([]int, error) { return allPids(m.dir) }

func (m *v2) KillAll() error {
	if _, err := os.Stat(filepath.Join(m.dir, "cgroup.kill")); err == nil {
		if err := writeFile(m.dir, "cgroup.kill", "1"); err != nil {
			return err
		}
	} else {
		_ = m.Freeze()
		pids, _ := m.Pids()
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		_ = m.Thaw()
	}
	for i := 0; i < 500; i++ {
		if pids, _ := m.Pids(); len(pids) == 0 {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("processes survive in the cgroup after SIGKILL")
}

func (m *v2) Stats() (*Stats, error) {
	if _, err := os.Stat(m.dir); err != nil {
		return nil, err
	}
	s := &Stats{}
	cpu := readKeyed(m.dir, "cpu.stat")
	s.CPU.Usage.Total = cpu["usage_usec"] * 1000
	s.CPU.Usage.User = cpu["user_usec"] * 1000
	s.CPU.Usage.Kernel = cpu["system_usec"] * 1000
	s.CPU.Throttling.Periods = cpu["nr_periods"]
	s.CPU.Throttling.ThrottledPeriods = cpu["nr_throttled"]
	s.CPU.Throttling.ThrottledTime = cpu["throttled_usec"] * 1000

	s.Memory.Raw = readKeyed(m.dir, "memory.stat")
	s.Memory.Cache = s.Memory.Raw["file"]
	cur, _ := readFile(m.dir, "memory.current")
	mx, _ := readFile(m.dir, "memory.max")
	peak, _ := readFile(m.dir, "memory.peak")
	s.Memory.Usage = MemoryEntry{Usage: parseUint(cur), Limit: parseUint(mx), Max: parseUint(peak),
		Failcnt: readKeyed(m.dir, "memory.events")["max"]}
	sc, _ := readFile(m.dir, "memory.swap.current")
	sm, _ := readFile(m.dir, "memory.swap.max")
	s.Memory.Swap = MemoryEntry{Usage: parseUint(sc), Limit: parseUint(sm)}

	pc, _ := readFile(m.dir, "pids.current")
	pm, _ := readFile(m.dir, "pids.max")
	s.Pids = PidsStats{Current: parseUint(pc), Limit: parseUint(pm)}

	// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..."
	if data, err := os.ReadFile(filepath.Join(m.dir, "io.stat")); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			var major, minor uint64
			if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
				continue
			}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				e := BlkioEntry{Major: major, Minor: minor, Value: parseUint(v)}
				switch k {
				case "rbytes", "rios":
					e.Op = "Read"
				case "wbytes", "wios":
					e.Op = "Write"
				default:
					continue
				}
				if strings.HasSuffix(k, "bytes") {
					s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
				} else {
					s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
				}
			}
		}
	}
	for _, size := range hugePageSizes() {
		c, err := readFile(m.dir, "hugetlb."+size+".current")
		if err != nil {
			continue
		}
		l, _ := readFile(m.dir, "hugetlb."+size+".max")
		if s.Hugetlb == nil {
			s.Hugetlb = map[string]HugetlbStats{}
		}
		s.Hugetlb[size] = HugetlbStats{Usage: parseUint(c), Max: parseUint(l), Failcnt: readKeyed(m.dir, "hugetlb."+size+".events")["max"]}
	}
	return s, nil
}

func (m *v2) Destroy() error {
	if _, err := os.Stat(m.dir); err != nil {
		return nil
	}
	if err := m.KillAll(); err != nil {
		return err
	}
	return removeDir(m.dir)
}
