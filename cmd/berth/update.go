package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// updateCommand is runc's `update`: the same flags, the same JSON for --resources.
var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change the resource limits of a created, running or paused container",
	ArgsUsage: "<container-id>",
	Description: `With --resources FILE (or - for stdin), the limits come from a JSON
linux.resources object (fields left out keep their value) and every other flag is ignored,
as in runc. Sizes take a unit: 512m, 1g, 1.5G, 1024k; -1 means unlimited.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "JSON linux.resources to merge, from a file or - for stdin"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "block IO weight, 10 to 1000"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CPU CFS period (µs)"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CPU CFS quota (µs per period; -1 for none)"},
		&cli.StringFlag{Name: "cpu-burst", Usage: "CPU CFS burst (µs)"},
		&cli.StringFlag{Name: "cpu-share", Aliases: []string{"cpu-shares"}, Usage: "CPU shares (relative weight)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "CPU real-time period (µs; cgroup v1 only)"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "CPU real-time runtime (µs; cgroup v1 only)"},
		&cli.StringFlag{Name: "cpu-idle", Usage: "1: SCHED_IDLE for the group, 0: normal"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to run on (e.g. 0-2,4)"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to allocate from"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (e.g. 512m)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory+swap limit; -1 for unlimited swap"},
		&cli.StringFlag{Name: "kernel-memory", Hidden: true, Usage: "obsolete: ignored"},
		&cli.StringFlag{Name: "kernel-memory-tcp", Hidden: true, Usage: "obsolete: ignored"},
		&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of processes (0 or -1: unlimited)"},
		&cli.StringFlag{Name: "l3-cache-schema", Usage: "Intel RDT L3 schema (not supported)"},
		&cli.StringFlag{Name: "mem-bw-schema", Usage: "Intel RDT memory bandwidth schema (not supported)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return errors.New("usage: berth update [flags] <container-id>")
		}
		r, err := updateResources(c)
		if err != nil {
			return err
		}
		ct, err := libcontainer.Load(root(c), c.Args().First())
		if err != nil {
			return err
		}
		defer ct.Close()
		return ct.Update(r)
	},
}

// updateResources reads --resources, or builds the resources from the flags.
func updateResources(c *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if in := c.String("resources"); in != "" {
		var f io.Reader = os.Stdin
		if in != "-" {
			file, err := os.Open(in)
			if err != nil {
				return nil, fmt.Errorf("--resources: %w", err)
			}
			defer file.Close()
			f = file
		}
		data, err := io.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("--resources %s: %w", in, err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			return nil, fmt.Errorf("--resources %s: not a JSON linux.resources object: %w", in, err)
		}
		// Unknown fields are ignored, as runc does (callers may send newer specs), but said.
		strict := json.NewDecoder(bytes.NewReader(data))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&specs.LinuxResources{}); err != nil {
			logrus.Warnf("--resources %s: %v: ignored", in, err)
		}
		return r, nil
	}
	if c.String("l3-cache-schema") != "" || c.String("mem-bw-schema") != "" {
		return nil, errors.New("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by berth")
	}
	for _, f := range []string{"kernel-memory", "kernel-memory-tcp"} {
		if c.IsSet(f) {
			logrus.Warnf("--%s: kernel memory limits are obsolete and ignored", f)
		}
	}
	mem, cpu := &specs.LinuxMemory{}, &specs.LinuxCPU{}
	for _, p := range []struct {
		flag string
		dst  **int64
	}{{"memory", &mem.Limit}, {"memory-reservation", &mem.Reservation}, {"memory-swap", &mem.Swap}} {
		if v := c.String(p.flag); v != "" {
			n, err := parseSize(v)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", p.flag, err)
			}
			*p.dst = &n
		}
	}
	for _, p := range []struct {
		flag string
		dst  **uint64
	}{{"cpu-period", &cpu.Period}, {"cpu-burst", &cpu.Burst}, {"cpu-share", &cpu.Shares}, {"cpu-rt-period", &cpu.RealtimePeriod}} {
		if v := c.String(p.flag); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s: %q is not a number", p.flag, v)
			}
			*p.dst = &n
		}
	}
	for _, p := range []struct {
		flag string
		dst  **int64
	}{{"cpu-quota", &cpu.Quota}, {"cpu-rt-runtime", &cpu.RealtimeRuntime}, {"cpu-idle", &cpu.Idle}} {
		if v := c.String(p.flag); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--%s: %q is not a number", p.flag, v)
			}
			*p.dst = &n
		}
	}
	cpu.Cpus, cpu.Mems = c.String("cpuset-cpus"), c.String("cpuset-mems")
	if *mem != (specs.LinuxMemory{}) {
		r.Memory = mem
	}
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if c.IsSet("pids-limit") {
		n := int64(c.Int("pids-limit"))
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
	if c.IsSet("blkio-weight") {
		w := c.Int("blkio-weight")
		if w < 10 || w > 1000 {
			return nil, fmt.Errorf("--blkio-weight: %d is outside 10..1000", w)
		}
		w16 := uint16(w)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w16}
	}
	if r.Memory == nil && r.CPU == nil && r.Pids == nil && r.BlockIO == nil && !c.IsSet("kernel-memory") && !c.IsSet("kernel-memory-tcp") {
		return nil, errors.New("berth update: nothing to change (give --resources or a limit flag)")
	}
	return r, nil
}

var sizeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(?:i?b)?$`) })

// parseSize reads a byte count as runc (docker's RAMInBytes) does: binary units, "-1" for
// unlimited.
func parseSize(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	m := sizeRe().FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (such as 512m, 1g, 1048576 or -1)", s)
	}
	if m[2] == "" && !strings.Contains(m[1], ".") {
		// A plain byte count: exact, up to the largest int64.
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[m[2]]
	v := f * mult
	if v >= math.MaxInt64 { // float64(MaxInt64) is 2^63, which does not fit
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}
