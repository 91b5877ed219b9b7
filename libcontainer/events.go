package libcontainer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
)

// The types below are the JSON of `runc events` (runc 1.1, package types): the same field
// names, the same omitempty, so that go-runc's Stats and every tool reading runc's output
// decode berth's. cgroups.Stats is close to them but not equal (no percpu, no kernel memory,
// no cpuset, only two blkio tables with Read and Write); Stats fills in the rest.

// Event is one line of `berth events`: "stats" with Data, or "oom" without.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// Stats is runc's types.Stats.
type Stats struct {
	CPU               CPU                 `json:"cpu"`
	CPUSet            CPUSet              `json:"cpuset"`
	Memory            Memory              `json:"memory"`
	Pids              Pids                `json:"pids"`
	Blkio             Blkio               `json:"blkio"`
	Hugetlb           map[string]Hugetlb  `json:"hugetlb"`
	IntelRdt          IntelRdt            `json:"intel_rdt"`
	NetworkInterfaces []*NetworkInterface `json:"network_interfaces"`
}

type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio: note runc's key for the queued table is "ioQueueRecursive".
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
}

type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"` // 0: no limit, as in runc
}

type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// IntelRdt is always empty: berth does not manage Intel RDT.
type IntelRdt struct{}

// NetworkInterface is runc's (capitalized keys); berth reports none, as runc does.
type NetworkInterface struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}

// Stats reads the container's cgroup counters in runc's shape.
func (c *Container) Stats() (*Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	cs, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("reading the stats of cgroup %s: %w", cg.Path(), err)
	}
	s := convertStats(cs)
	if cgroups.DetectMode() == cgroups.Unified {
		fixV2(s, cs)
	} else {
		addV1(s, cgroups.V1Dirs(cg.Path()))
	}
	return s, nil
}

// convertStats maps what cgroups.Stats has, field for field.
func convertStats(cs *cgroups.Stats) *Stats {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	s.CPU.Usage.Total = cs.CPU.Usage.Total
	s.CPU.Usage.Kernel = cs.CPU.Usage.Kernel
	s.CPU.Usage.User = cs.CPU.Usage.User
	s.CPU.Throttling = Throttling(cs.CPU.Throttling)
	s.Memory.Cache = cs.Memory.Cache
	s.Memory.Usage = MemoryEntry(cs.Memory.Usage)
	s.Memory.Swap = MemoryEntry(cs.Memory.Swap)
	s.Memory.Raw = cs.Memory.Raw
	s.Pids.Current = cs.Pids.Current
	s.Pids.Limit = cs.Pids.Limit
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0 // pids.max "max": runc has always said 0
	}
	s.Blkio.IoServiceBytesRecursive = convertBlkio(cs.Blkio.IoServiceBytesRecursive)
	s.Blkio.IoServicedRecursive = convertBlkio(cs.Blkio.IoServicedRecursive)
	for size, h := range cs.Hugetlb {
		s.Hugetlb[size] = Hugetlb(h)
	}
	return s
}

func convertBlkio(in []cgroups.BlkioEntry) []BlkioEntry {
	var out []BlkioEntry
	for _, e := range in {
		out = append(out, BlkioEntry(e))
	}
	return out
}

// fixV2 aligns the cgroup v2 numbers with runc's: swap is reported as memory+swap (what v1's
// memsw files count), and hugetlb has no max usage on v2 (cgroups.Stats puts the limit there).
func fixV2(s *Stats, cs *cgroups.Stats) {
	if s.Memory.Swap != (MemoryEntry{}) {
		s.Memory.Swap.Usage += cs.Memory.Usage.Usage
		if s.Memory.Swap.Limit != math.MaxUint64 && cs.Memory.Usage.Limit != math.MaxUint64 {
			s.Memory.Swap.Limit += cs.Memory.Usage.Limit
		} else {
			s.Memory.Swap.Limit = math.MaxUint64
		}
	}
	for size, h := range s.Hugetlb {
		h.Max = 0
		s.Hugetlb[size] = h
	}
}

// addV1 reads what cgroups.Stats leaves out on a v1 host, from the same files runc reads.
func addV1(s *Stats, dirs map[string]string) {
	if d, ok := dirs["cpuacct"]; ok {
		s.CPU.Usage.Percpu = readUintList(filepath.Join(d, "cpuacct.usage_percpu"))
		s.CPU.Usage.PercpuKernel, s.CPU.Usage.PercpuUser = percpuModes(filepath.Join(d, "cpuacct.usage_all"))
	}
	if d, ok := dirs["cpuset"]; ok {
		s.CPUSet = cpusetStats(d)
	}
	if d, ok := dirs["memory"]; ok {
		s.Memory.Swap = memoryEntry(d, "memory.memsw")
		s.Memory.Kernel = memoryEntry(d, "memory.kmem")
		s.Memory.KernelTCP = memoryEntry(d, "memory.kmem.tcp")
	}
	if d, ok := dirs["blkio"]; ok {
		s.Blkio = blkioStats(d)
	}
}

func readUint(file string) (uint64, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v := strings.TrimSpace(string(data))
	if v == "max" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(v, 10, 64)
}

func readUintList(file string) []uint64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	out := []uint64{}
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// percpuModes reads cpuacct.usage_all: a "cpu user system" header, then one line per cpu.
func percpuModes(file string) (kernel, user []uint64) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		u, err1 := strconv.ParseUint(f[1], 10, 64)
		k, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil
		}
		kernel, user = append(kernel, k), append(user, u)
	}
	return kernel, user
}

// memoryEntry reads PREFIX.{usage_in_bytes,max_usage_in_bytes,failcnt,limit_in_bytes}; all
// zero when the kernel has no such files (no swap accounting, no kmem).
func memoryEntry(dir, prefix string) MemoryEntry {
	var e MemoryEntry
	var err error
	if e.Usage, err = readUint(filepath.Join(dir, prefix+".usage_in_bytes")); err != nil {
		return MemoryEntry{}
	}
	e.Max, _ = readUint(filepath.Join(dir, prefix+".max_usage_in_bytes"))
	e.Failcnt, _ = readUint(filepath.Join(dir, prefix+".failcnt"))
	e.Limit, _ = readUint(filepath.Join(dir, prefix+".limit_in_bytes"))
	return e
}

func cpusetStats(dir string) CPUSet {
	var c CPUSet
	c.CPUs = cpuList(filepath.Join(dir, "cpuset.cpus"))
	c.Mems = cpuList(filepath.Join(dir, "cpuset.mems"))
	for file, dst := range map[string]*uint64{
		"cpuset.cpu_exclusive": &c.CPUExclusive, "cpuset.mem_hardwall": &c.MemHardwall,
		"cpuset.mem_exclusive": &c.MemExclusive, "cpuset.memory_migrate": &c.MemoryMigrate,
		"cpuset.memory_spread_page": &c.MemorySpreadPage, "cpuset.memory_spread_slab": &c.MemorySpreadSlab,
		"cpuset.memory_pressure": &c.MemoryPressure, "cpuset.sched_load_balance": &c.SchedLoadBalance,
	} {
		*dst, _ = readUint(filepath.Join(dir, file))
	}
	if data, err := os.ReadFile(filepath.Join(dir, "cpuset.sched_relax_domain_level")); err == nil {
		c.SchedRelaxDomainLevel, _ = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	}
	return c
}

// cpuList expands "0-2,4" into [0 1 2 4].
func cpuList(file string) []uint16 {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []uint16
	for _, part := range strings.Split(strings.TrimSpace(string(data)), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out
}

// blkioStats reads the first complete group of blkio files, in runc's order: BFQ with debug
// files, BFQ, CFQ, then the throttling counters (recursive, then not). A group whose first
// file is missing or empty is skipped.
func blkioStats(dir string) Blkio {
	var b Blkio
	type file struct {
		name string
		dst  *[]BlkioEntry
	}
	groups := [][]file{
		{{"blkio.bfq.sectors_recursive", &b.SectorsRecursive}, {"blkio.bfq.io_service_time_recursive", &b.IoServiceTimeRecursive},
			{"blkio.bfq.io_wait_time_recursive", &b.IoWaitTimeRecursive}, {"blkio.bfq.io_merged_recursive", &b.IoMergedRecursive},
			{"blkio.bfq.io_queued_recursive", &b.IoQueuedRecursive}, {"blkio.bfq.time_recursive", &b.IoTimeRecursive},
			{"blkio.bfq.io_serviced_recursive", &b.IoServicedRecursive}, {"blkio.bfq.io_service_bytes_recursive", &b.IoServiceBytesRecursive}},
		{{"blkio.bfq.io_serviced_recursive", &b.IoServicedRecursive}, {"blkio.bfq.io_service_bytes_recursive", &b.IoServiceBytesRecursive}},
		{{"blkio.sectors_recursive", &b.SectorsRecursive}, {"blkio.io_service_time_recursive", &b.IoServiceTimeRecursive},
			{"blkio.io_wait_time_recursive", &b.IoWaitTimeRecursive}, {"blkio.io_merged_recursive", &b.IoMergedRecursive},
			{"blkio.io_queued_recursive", &b.IoQueuedRecursive}, {"blkio.time_recursive", &b.IoTimeRecursive},
			{"blkio.io_serviced_recursive", &b.IoServicedRecursive}, {"blkio.io_service_bytes_recursive", &b.IoServiceBytesRecursive}},
		{{"blkio.throttle.io_serviced_recursive", &b.IoServicedRecursive}, {"blkio.throttle.io_service_bytes_recursive", &b.IoServiceBytesRecursive}},
		{{"blkio.throttle.io_serviced", &b.IoServicedRecursive}, {"blkio.throttle.io_service_bytes", &b.IoServiceBytesRecursive}},
	}
	for _, g := range groups {
		first := readBlkioFile(filepath.Join(dir, g[0].name))
		if first == nil {
			continue
		}
		*g[0].dst = first
		for _, f := range g[1:] {
			*f.dst = readBlkioFile(filepath.Join(dir, f.name))
		}
		return b
	}
	return Blkio{}
}

// readBlkioFile parses "MAJ:MIN [Op] N" lines (every op: Read, Write, Sync, Async, Discard,
// Total), skipping the overall "Total N" line.
func readBlkioFile(file string) []BlkioEntry {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []BlkioEntry
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == ':' })
		if len(f) < 3 {
			continue
		}
		major, err1 := strconv.ParseUint(f[0], 10, 64)
		minor, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		e := BlkioEntry{Major: major, Minor: minor}
		v := f[2]
		if len(f) == 4 {
			e.Op, v = f[2], f[3]
		}
		if e.Value, err = strconv.ParseUint(v, 10, 64); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

// oomWatch tells when the kernel OOM-kills a process of the cgroup: it counts oom_kill in
// memory.oom_control (v1) or memory.events (v2), and offers an fd to poll that becomes
// readable when that may have changed: an eventfd registered on memory.oom_control through
// cgroup.event_control (v1), an inotify watch on memory.events (v2).
type oomWatch struct {
	fd      int    // -1 when there is none: the counter is then only read on each tick
	counter string // the file holding "oom_kill N"
	seen    uint64
	eventfd bool
}

func newOOMWatch(cgPath string) (*oomWatch, error) {
	w := &oomWatch{fd: -1}
	if cgroups.DetectMode() == cgroups.Unified {
		dir := filepath.Join("/sys/fs/cgroup", cgPath)
		w.counter = filepath.Join(dir, "memory.events")
		if _, err := os.Stat(w.counter); err != nil {
			return nil, fmt.Errorf("OOM notifications need the memory controller: %w", err)
		}
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("inotify_init1: %w", err)
		}
		if _, err := unix.InotifyAddWatch(fd, w.counter, unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("watching %s: %w", w.counter, err)
		}
		w.fd = fd
	} else {
		dir, ok := cgroups.V1Dirs(cgPath)["memory"]
		if !ok {
			return nil, errors.New("OOM notifications need the memory controller, which is not mounted")
		}
		w.counter = filepath.Join(dir, "memory.oom_control")
		ctl, err := os.Open(w.counter)
		if err != nil {
			return nil, fmt.Errorf("OOM notifications: %w", err)
		}
		defer ctl.Close()
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
		if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
			// Kernels may drop v1 event notification: the counter is still polled.
			unix.Close(efd)
		} else {
			w.fd, w.eventfd = efd, true
		}
	}
	w.seen, _ = w.count()
	return w, nil
}

func (w *oomWatch) count() (uint64, error) {
	data, err := os.ReadFile(w.counter)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New(w.counter + ": no oom_kill counter")
}

// drain empties the fd, and returns how many OOM kills happened since the last call.
func (w *oomWatch) drain() int {
	if w.fd >= 0 {
		buf := make([]byte, 4096)
		for {
			if n, err := unix.Read(w.fd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
	n, err := w.count()
	if err != nil || n <= w.seen {
		return 0
	}
	d := n - w.seen
	w.seen = n
	return int(d)
}

func (w *oomWatch) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// errEventsNotRunning is runc's text for `events` on a stopped container.
func errEventsNotRunning(id string) error {
	return fmt.Errorf("container with id %s is not running", id)
}

// StatsEvent reads the stats once, as `events --stats` prints them.
func (c *Container) StatsEvent() (*Event, error) {
	if c.status() == Stopped {
		return nil, errEventsNotRunning(c.ID)
	}
	s, err := c.Stats()
	if err != nil {
		return nil, err
	}
	return &Event{Type: "stats", ID: c.ID, Data: s}, nil
}

// Events streams the container's stats every interval, and an "oom" event for each process
// the kernel OOM-kills in its cgroup, until the container stops. Emit errors end the stream;
// a failed stats read is reported through warn and skipped, as runc does.
func (c *Container) Events(interval time.Duration, emit func(*Event) error, warn func(error)) error {
	if interval <= 0 {
		return errors.New("duration interval must be greater than 0")
	}
	if c.status() == Stopped {
		return errEventsNotRunning(c.ID)
	}
	// A pidfd on init tells when the container stops; the start time, checked after
	// opening it, that the pid is still init's.
	pidfd, err := unix.PidfdOpen(c.State.Pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", c.State.Pid, err)
	}
	defer unix.Close(pidfd)
	if !c.State.initAlive() {
		return errEventsNotRunning(c.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	oom, err := newOOMWatch(cg.Path())
	if err != nil {
		return err
	}
	defer oom.close()
	emitOOM := func() error {
		for i := oom.drain(); i > 0; i-- {
			if err := emit(&Event{Type: "oom", ID: c.ID}); err != nil {
				return err
			}
		}
		return nil
	}
	next := time.Now().Add(interval)
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if oom.fd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(oom.fd), Events: unix.POLLIN})
		}
		// The counter is also read at least every second (every 100ms without a
		// notification fd), in case a notification is missed.
		maxWait := time.Second
		if oom.fd < 0 {
			maxWait = 100 * time.Millisecond
		}
		wait := min(time.Until(next), maxWait)
		if wait < 0 {
			wait = 0
		}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll: %w", err)
		}
		if err := emitOOM(); err != nil {
			return err
		}
		if fds[0].Revents != 0 {
			// Init is gone: the cgroup's notification of the kill that ended it may still
			// be on its way (v2 notifies from a work queue), so look once more.
			time.Sleep(50 * time.Millisecond)
			return emitOOM()
		}
		if !time.Now().Before(next) {
			next = next.Add(interval)
			if now := time.Now(); next.Before(now) {
				next = now.Add(interval)
			}
			s, err := c.Stats()
			if err != nil {
				if _, serr := os.Stat(filepath.Join(c.dir, stateFile)); serr != nil {
					return nil // deleted under us
				}
				warn(err)
				continue
			}
			if err := emit(&Event{Type: "stats", ID: c.ID, Data: s}); err != nil {
				return err
			}
		}
	}
}
