package cgroups

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The types below are the JSON of `runc events --stats` (runc 1.1, package types): the same
// field names, the same omitempty, so that go-runc's Stats and every tool reading runc's output
// decode berth's. Stats (what Manager.Stats reads) is close to them but not equal (no percpu,
// no kernel memory, no cpuset, only two blkio tables with Read and Write); ReadRuncStats fills
// in the rest. Entries shaped alike (MemoryEntry, BlkioEntry, PidsStats, HugetlbStats) are
// shared.

// ReadRuncStats reads the group's counters in runc's shape.
func ReadRuncStats(m Manager) (*RuncStats, error) {
	cs, err := m.Stats()
	if err != nil {
		return nil, err
	}
	s := convertStats(cs)
	switch g := m.(type) {
	case *v1:
		addV1(s, g.dirs)
	case *v2:
		fixV2(s, cs)
	}
	return s, nil
}

// RuncStats is runc's types.Stats.
type RuncStats struct {
	CPU               RuncCPU                 `json:"cpu"`
	CPUSet            CPUSet                  `json:"cpuset"`
	Memory            RuncMemory              `json:"memory"`
	Pids              PidsStats               `json:"pids"`
	Blkio             RuncBlkio               `json:"blkio"`
	Hugetlb           map[string]HugetlbStats `json:"hugetlb"`
	IntelRdt          IntelRdt                `json:"intel_rdt"`
	NetworkInterfaces []*NetworkInterface     `json:"network_interfaces"`
}

// RuncBlkio: note runc's key for the queued table is "ioQueueRecursive".
type RuncBlkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
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

type RuncCPU struct {
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

type RuncMemory struct {
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

// convertStats maps what Stats has, field for field.
func convertStats(cs *Stats) *RuncStats {
	s := &RuncStats{Hugetlb: map[string]HugetlbStats{}}
	s.CPU.Usage.Total = cs.CPU.Usage.Total
	s.CPU.Usage.Kernel = cs.CPU.Usage.Kernel
	s.CPU.Usage.User = cs.CPU.Usage.User
	s.CPU.Throttling = Throttling(cs.CPU.Throttling)
	s.Memory.Cache = cs.Memory.Cache
	s.Memory.Usage = cs.Memory.Usage
	s.Memory.Swap = cs.Memory.Swap
	s.Memory.Raw = cs.Memory.Raw
	s.Pids.Current = cs.Pids.Current
	s.Pids.Limit = cs.Pids.Limit
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0 // pids.max "max": runc has always said 0
	}
	s.Blkio.IoServiceBytesRecursive = cs.Blkio.IoServiceBytesRecursive
	s.Blkio.IoServicedRecursive = cs.Blkio.IoServicedRecursive
	for size, h := range cs.Hugetlb {
		s.Hugetlb[size] = h
	}
	return s
}

// fixV2 aligns the cgroup v2 numbers with runc's: swap is reported as memory+swap (what v1's
// memsw files count), and hugetlb has no max usage on v2 (Stats puts the limit there).
func fixV2(s *RuncStats, cs *Stats) {
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

// addV1 reads what Stats leaves out on a v1 host, from the same files runc reads.
func addV1(s *RuncStats, dirs map[string]string) {
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

func readUintFile(file string) (uint64, error) {
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
	if e.Usage, err = readUintFile(filepath.Join(dir, prefix+".usage_in_bytes")); err != nil {
		return MemoryEntry{}
	}
	e.Max, _ = readUintFile(filepath.Join(dir, prefix+".max_usage_in_bytes"))
	e.Failcnt, _ = readUintFile(filepath.Join(dir, prefix+".failcnt"))
	e.Limit, _ = readUintFile(filepath.Join(dir, prefix+".limit_in_bytes"))
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
		*dst, _ = readUintFile(filepath.Join(dir, file))
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
func blkioStats(dir string) RuncBlkio {
	var b RuncBlkio
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
	return RuncBlkio{}
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
