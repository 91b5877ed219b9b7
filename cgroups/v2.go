package cgroups

import (
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

// v2 is a group in the unified hierarchy.
type v2 struct {
	path string
	dir  string
}

func (m *v2) Path() string { return m.path }

// Create makes the group and enables, in every ancestor's cgroup.subtree_control, the
// controllers the group's limits need (a v2 controller only appears in a child once its parent
// delegates it).
func (m *v2) Create() error {
	explain.Stepf("cgroups.Create", "mkdir -p %s", m.dir)
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	avail, err := readFile(root, "cgroup.controllers")
	if err != nil {
		return err
	}
	var enable []string
	for _, c := range strings.Fields(avail) {
		enable = append(enable, "+"+c)
	}
	rel := strings.Split(strings.Trim(m.path, "/"), "/")
	dir := root
	for _, part := range rel[:len(rel)-1] {
		if err := writeFile(dir, "cgroup.subtree_control", strings.Join(enable, " ")); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
	}
	return writeFile(dir, "cgroup.subtree_control", strings.Join(enable, " "))
}

// Set translates the spec's v1-shaped resources to v2 files as runc does.
func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil {
			if err := writeFile(m.dir, "memory.max", limitValue(*mem.Limit)); err != nil {
				return fmt.Errorf("linux.resources.memory.limit: %w", err)
			}
		}
		if mem.Reservation != nil {
			if err := writeFile(m.dir, "memory.low", limitValue(*mem.Reservation)); err != nil {
				return fmt.Errorf("linux.resources.memory.reservation: %w", err)
			}
		}
		if mem.Swap != nil {
			// The spec's swap is memory+swap (v1's memsw); v2's swap.max is swap alone.
			v := "max"
			if *mem.Swap >= 0 {
				if mem.Limit == nil || *mem.Limit < 0 {
					return errors.New("linux.resources.memory.swap: needs memory.limit on cgroup v2")
				}
				if *mem.Swap < *mem.Limit {
					return fmt.Errorf("linux.resources.memory.swap: %d is below memory.limit %d", *mem.Swap, *mem.Limit)
				}
				v = strconv.FormatInt(*mem.Swap-*mem.Limit, 10)
			}
			if err := writeFile(m.dir, "memory.swap.max", v); err != nil {
				return fmt.Errorf("linux.resources.memory.swap: %w", err)
			}
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			// runc's mapping of shares [2, 262144] onto weight [1, 10000].
			w := 1 + ((*cpu.Shares-2)*9999)/262142
			if err := writeFile(m.dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
				return fmt.Errorf("linux.resources.cpu.shares: %w", err)
			}
		}
		if (cpu.Quota != nil && *cpu.Quota != 0) || (cpu.Period != nil && *cpu.Period != 0) {
			quota, period := "max", uint64(100000)
			if cpu.Quota != nil && *cpu.Quota > 0 {
				quota = strconv.FormatInt(*cpu.Quota, 10)
			}
			if cpu.Period != nil && *cpu.Period != 0 {
				period = *cpu.Period
			}
			if err := writeFile(m.dir, "cpu.max", quota+" "+strconv.FormatUint(period, 10)); err != nil {
				return fmt.Errorf("linux.resources.cpu.quota: %w", err)
			}
		}
		if cpu.Cpus != "" {
			if err := writeFile(m.dir, "cpuset.cpus", cpu.Cpus); err != nil {
				return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
			}
		}
		if cpu.Mems != "" {
			if err := writeFile(m.dir, "cpuset.mems", cpu.Mems); err != nil {
				return fmt.Errorf("linux.resources.cpu.mems: %w", err)
			}
		}
	}
	if r.Pids != nil {
		v := "max"
		if r.Pids.Limit != nil && *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := writeFile(m.dir, "pids.max", v); err != nil {
			return fmt.Errorf("linux.resources.pids.limit: %w", err)
		}
	}
	for k, v := range r.Unified {
		if strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("linux.resources.unified[%q]: not a cgroup file name", k)
		}
		if err := writeFile(m.dir, k, v); err != nil {
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	return nil
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

func (m *v2) JoinFiles() []string { return []string{filepath.Join(m.dir, "cgroup.procs")} }

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

func (m *v2) Pids() ([]int, error) { return readPids(filepath.Join(m.dir, "cgroup.procs")) }

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
	s := &Stats{}
	cur, _ := readFile(m.dir, "memory.current")
	mx, _ := readFile(m.dir, "memory.max")
	s.Memory.Usage = MemoryEntry{Usage: parseUint(cur), Limit: parseUint(mx)}
	pc, _ := readFile(m.dir, "pids.current")
	pm, _ := readFile(m.dir, "pids.max")
	s.Pids = PidsStats{Current: parseUint(pc), Limit: parseUint(pm)}
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
