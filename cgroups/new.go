package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/rawfile"
)

// Mode is how the host mounts cgroups.
type Mode int

const (
	Legacy  Mode = iota // v1 hierarchies only
	Hybrid              // v1 hierarchies plus a cgroup2 mount holding no useful controller
	Unified             // cgroup v2 only
)

const root = "/sys/fs/cgroup"

// DetectMode reads how /sys/fs/cgroup is mounted, once a process (a create asks four or five
// times; no berth process mounts or unmounts a hierarchy, as v1Hierarchies says).
func DetectMode() Mode { return detectMode() }

var detectMode = sync.OnceValue(func() Mode {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return Unified
	}
	if _, err := os.Stat(filepath.Join(root, "unified", "cgroup.controllers")); err == nil {
		return Hybrid
	}
	return Legacy
})

// New returns the manager for the cgroup at path (from linux.cgroupsPath; "" picks
// "/berth/<id>", a relative path is placed under /berth) on whatever layout the host has.
// A systemd-style "slice:prefix:name" (containerd's CRI passes one even with its cgroupfs
// driver) is, without --systemd-cgroup, a literal directory name, as with runc.
// It touches nothing: Create does. With --systemd-cgroup (SystemdDriver) the path is systemd's
// "slice:prefix:name" and the group a transient scope (NewSystemd).
// Rootless (without --systemd-cgroup), see rootless.go.
func New(path, id string) (Manager, error) {
	if Rootless && !SystemdDriver {
		return newRootless(path, id)
	}
	if SystemdDriver && os.Geteuid() != 0 {
		// runc asks the user's systemd instance (session bus); berth knows only the system's.
		return nil, errors.New("--systemd-cgroup: not supported for an ordinary user (systemd's user instance); use the cgroupfs driver with a delegated cgroup (docs/rootless.md)")
	}
	if path == "" && !SystemdDriver {
		path = "/berth/" + id
	}
	return Open(path, id, SystemdDriver)
}

// Open is New for a container whose driver is known (recorded in its state). An empty path
// is a rootless container that has no cgroup.
func Open(path, id string, systemd bool) (Manager, error) {
	if systemd {
		return NewSystemd(path, id)
	}
	if path == "" {
		return &noCgroup{}, nil
	}
	if !filepath.IsAbs(path) {
		path = "/berth/" + path
	}
	clean := filepath.Clean(path)
	if strings.Contains(path, "/../") || strings.HasSuffix(path, "/..") || clean == "/" {
		return nil, fmt.Errorf("%q: must name a cgroup below the root, without \"..\"", path)
	}
	if DetectMode() == Unified {
		return &v2{path: clean, dir: filepath.Join(root, clean), rootless: Rootless}, nil
	}
	m, err := newV1(clean)
	if err != nil {
		return nil, err
	}
	m.rootless = Rootless
	return m, nil
}

// Check refuses, without touching anything, what Set would refuse on this host's layout before
// writing: fields cgroup v2 cannot express, unified keys on a v1 host, malformed device rules.
// A caller that writes the limits late (once its init is ready) uses it to fail early.
func Check(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	mode := DetectMode()
	if _, err := parseDeviceRules(r.Devices, mode != Unified); err != nil {
		return err
	}
	if mode == Unified {
		return checkV2(r)
	}
	if len(r.Unified) > 0 {
		return errV1Unified
	}
	return nil
}

var errV1Unified = errors.New("invalid configuration: linux.resources.unified: cgroup v2 files cannot be set on a cgroup v1 host")

// mkdirAll is os.MkdirAll(dir, 0o755) trying dir itself first: a container's group usually
// has its parent already, so that is one mkdir instead of a stat of dir, a stat of its parent
// and the mkdir, in every hierarchy. When dir exists or a parent is missing, MkdirAll does
// what it always did (and its errors are the ones returned).
func mkdirAll(dir string) error {
	if err := os.Mkdir(dir, 0o755); err == nil {
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

// writeFile writes one cgroup control file and reports it.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	explain.Stepf("cgroups.writeFile", "%s = %s", p, value)
	if err := rawfile.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

// fileWriter writes values to the files of one group as writeFile does (each value in one
// write(2), the same steps and errors), opening each file once for all its values: a v1
// devices group takes one rule a write, a create writes a dozen, and opening a kernfs file
// costs more than writing it.
type fileWriter struct {
	dir   string
	files map[string]*os.File
}

func newFileWriter(dir string) *fileWriter {
	return &fileWriter{dir: dir, files: map[string]*os.File{}}
}

func (w *fileWriter) write(file, value string) error {
	p := filepath.Join(w.dir, file)
	explain.Stepf("cgroups.writeFile", "%s = %s", p, value)
	f, ok := w.files[file]
	if !ok {
		var err error
		if f, err = rawfile.Open(p, os.O_WRONLY, 0); err != nil {
			return fmt.Errorf("writing %q to %s: %w", value, p, err)
		}
		w.files[file] = f
	}
	if _, err := f.Write([]byte(value)); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

// close closes the files; a close of a cgroup file reports nothing a write did not.
func (w *fileWriter) close() {
	for _, f := range w.files {
		f.Close()
	}
}

func readFile(dir, file string) (string, error) {
	data, err := rawfile.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(data)), err
}

// readPids parses a cgroup.procs file.
func readPids(p string) ([]int, error) {
	data, err := rawfile.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// removeDir removes a cgroup directory and the groups nested in it (a container may make its
// own), deepest first, retrying while the kernel still counts exiting tasks.
func removeDir(dir string) error {
	// Most groups have no nested group: one rmdir, without listing the directory first.
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		explain.Stepf("cgroups.removeDir", "rmdir %s", dir)
		return nil
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeDir(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	explain.Stepf("cgroups.removeDir", "rmdir %s", dir)
	for i := 0; i < 200; i++ {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}

// allPids lists the processes of the group at dir and of every group nested in it.
func allPids(dir string) ([]int, error) {
	pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			sub, err := allPids(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			pids = append(pids, sub...)
		}
	}
	return pids, nil
}

// Stats are a group's usage counters, shaped like the "data" of runc's `events --stats`.
type Stats struct {
	CPU     CPUStats                `json:"cpu"`
	Memory  MemoryStats             `json:"memory"`
	Pids    PidsStats               `json:"pids"`
	Blkio   BlkioStats              `json:"blkio"`
	Hugetlb map[string]HugetlbStats `json:"hugetlb,omitempty"`
}

type CPUStats struct {
	Usage struct {
		Total  uint64 `json:"total,omitempty"`
		Kernel uint64 `json:"kernel"`
		User   uint64 `json:"user"`
	} `json:"usage"`
	Throttling struct {
		Periods          uint64 `json:"periods,omitempty"`
		ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
		ThrottledTime    uint64 `json:"throttledTime,omitempty"`
	} `json:"throttling"`
}

type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type MemoryStats struct {
	Cache uint64            `json:"cache,omitempty"`
	Usage MemoryEntry       `json:"usage,omitempty"`
	Swap  MemoryEntry       `json:"swap,omitempty"`
	Raw   map[string]uint64 `json:"raw,omitempty"`
}

type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one device's counter; Op is "Read" or "Write".
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// readKeyed parses a flat keyed file ("key value" per line: memory.stat, cpu.stat, ...).
func readKeyed(dir, file string) map[string]uint64 {
	out := map[string]uint64{}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			out[f[0]] = parseUint(f[1])
		}
	}
	return out
}

// hugePageSizes lists the sizes the kernel has, as cgroup file names spell them ("2MB").
func hugePageSizes() []string {
	ents, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	var out []string
	for _, e := range ents {
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "hugepages-"), "kB"), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case kb >= 1<<20:
			out = append(out, strconv.FormatUint(kb>>20, 10)+"GB")
		case kb >= 1<<10:
			out = append(out, strconv.FormatUint(kb>>10, 10)+"MB")
		default:
			out = append(out, strconv.FormatUint(kb, 10)+"KB")
		}
	}
	return out
}

// parseUint reads a counter; "max" reads as the largest value.
func parseUint(s string) uint64 {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64
	}
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
