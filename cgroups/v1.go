package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// v1 is a group present in every v1 hierarchy of the host. The cgroup2 tree of a hybrid host
// is left alone: it holds no controller worth a whole-process move, which costs an RCU grace
// period (milliseconds) on every container start.
type v1 struct {
	path string
	dirs map[string]string // controller (or "unified", "name=systemd") -> directory
}

func newV1(path string) (*v1, error) {
	m := &v1{path: path, dirs: map[string]string{}}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 || !strings.HasPrefix(pre[4], root+"/") {
			continue
		}
		switch post[0] {
		case "cgroup":
			for _, opt := range strings.Split(post[2], ",") {
				switch {
				case opt == "rw" || opt == "ro" || opt == "clone_children" || opt == "noprefix" || strings.HasPrefix(opt, "release_agent="):
				default:
					m.dirs[opt] = filepath.Join(pre[4], path)
				}
			}
		}
	}
	if len(m.dirs) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted under /sys/fs/cgroup")
	}
	return m, nil
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
	for _, d := range m.uniqueDirs() {
		explain.Stepf("cgroups.Create", "mkdir -p %s", d)
		if err := os.MkdirAll(d, 0o755); err != nil {
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

// Set writes the limits v1 can hold. Memory swap follows runc: memory.memsw is limit+swap.
func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if mem := r.Memory; mem != nil {
		d, ok := m.dirs["memory"]
		if !ok && (mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil) {
			return errors.New("linux.resources.memory: no memory controller on this host")
		}
		if mem.Limit != nil {
			if err := writeFile(d, "memory.limit_in_bytes", strconv.FormatInt(*mem.Limit, 10)); err != nil {
				return fmt.Errorf("linux.resources.memory.limit: %w", err)
			}
		}
		if mem.Reservation != nil {
			if err := writeFile(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
				return fmt.Errorf("linux.resources.memory.reservation: %w", err)
			}
		}
		if mem.Swap != nil {
			if err := writeFile(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*mem.Swap, 10)); err != nil {
				return fmt.Errorf("linux.resources.memory.swap: %w", err)
			}
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			if err := writeFile(d, "memory.oom_control", "1"); err != nil {
				return fmt.Errorf("linux.resources.memory.disableOOMKiller: %w", err)
			}
		}
	}
	if cpu := r.CPU; cpu != nil {
		d := m.dirs["cpu"]
		if cpu.Shares != nil && *cpu.Shares != 0 {
			if err := writeFile(d, "cpu.shares", strconv.FormatUint(*cpu.Shares, 10)); err != nil {
				return fmt.Errorf("linux.resources.cpu.shares: %w", err)
			}
		}
		if cpu.Period != nil && *cpu.Period != 0 {
			if err := writeFile(d, "cpu.cfs_period_us", strconv.FormatUint(*cpu.Period, 10)); err != nil {
				return fmt.Errorf("linux.resources.cpu.period: %w", err)
			}
		}
		if cpu.Quota != nil && *cpu.Quota != 0 {
			if err := writeFile(d, "cpu.cfs_quota_us", strconv.FormatInt(*cpu.Quota, 10)); err != nil {
				return fmt.Errorf("linux.resources.cpu.quota: %w", err)
			}
		}
		if cpu.Cpus != "" {
			if err := writeFile(m.dirs["cpuset"], "cpuset.cpus", cpu.Cpus); err != nil {
				return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
			}
		}
		if cpu.Mems != "" {
			if err := writeFile(m.dirs["cpuset"], "cpuset.mems", cpu.Mems); err != nil {
				return fmt.Errorf("linux.resources.cpu.mems: %w", err)
			}
		}
	}
	if r.Pids != nil {
		v := "max"
		if r.Pids.Limit != nil && *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := writeFile(m.dirs["pids"], "pids.max", v); err != nil {
			return fmt.Errorf("linux.resources.pids.limit: %w", err)
		}
	}
	if r.BlockIO != nil && r.BlockIO.Weight != nil {
		if err := writeFile(m.dirs["blkio"], "blkio.weight", strconv.Itoa(int(*r.BlockIO.Weight))); err != nil {
			return fmt.Errorf("linux.resources.blockIO.weight: %w", err)
		}
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	return nil
}

// setDevices replays linux.resources.devices into devices.allow/deny in order.
func (m *v1) setDevices(rules []specs.LinuxDeviceCgroup) error {
	d, ok := m.dirs["devices"]
	if !ok {
		return nil
	}
	for i, r := range rules {
		typ := r.Type
		if typ == "" {
			typ = "a"
		}
		major, minor := "*", "*"
		if r.Major != nil {
			major = strconv.FormatInt(*r.Major, 10)
		}
		if r.Minor != nil {
			minor = strconv.FormatInt(*r.Minor, 10)
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		rule := fmt.Sprintf("%s %s:%s %s", typ, major, minor, access)
		if typ == "a" {
			rule = "a"
		}
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeFile(d, file, rule); err != nil {
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

func (m *v1) setFreezer(state string) error {
	d, ok := m.dirs["freezer"]
	if !ok {
		return errors.New("no freezer controller on this host")
	}
	for i := 0; i < 1000; i++ {
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

func (m *v1) Pids() ([]int, error) { return readPids(m.procsFile()) }

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
		u, _ := readFile(d, "memory.usage_in_bytes")
		l, _ := readFile(d, "memory.limit_in_bytes")
		mx, _ := readFile(d, "memory.max_usage_in_bytes")
		fc, _ := readFile(d, "memory.failcnt")
		s.Memory.Usage = MemoryEntry{Usage: parseUint(u), Limit: parseUint(l), Max: parseUint(mx), Failcnt: parseUint(fc)}
	}
	if d, ok := m.dirs["pids"]; ok {
		c, _ := readFile(d, "pids.current")
		l, _ := readFile(d, "pids.max")
		s.Pids = PidsStats{Current: parseUint(c), Limit: parseUint(l)}
	}
	if d, ok := m.dirs["cpuacct"]; ok {
		t, _ := readFile(d, "cpuacct.usage")
		s.CPU.Usage.Total = parseUint(t)
	}
	return s, nil
}

func (m *v1) Destroy() error {
	if _, err := os.Stat(m.procsFile()); err == nil {
		if err := m.KillAll(); err != nil {
			return err
		}
	}
	var errs []error
	for _, d := range m.uniqueDirs() {
		if err := removeDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
