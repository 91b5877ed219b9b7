package cgroups

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// usecInfinity is systemd's "no limit" for byte, task and time properties.
const usecInfinity = math.MaxUint64

func prop(name string, v any) sd.Property {
	return sd.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// systemdProps translates linux.resources into the unit properties systemd can express, so
// that systemd itself holds (and re-applies, on a daemon-reload) the same limits the files get.
// What it cannot express is written to the files only (systemd.Set), as runc does:
//
//	linux.resources field      property                    value
//	---------------------      --------                    -----
//	memory.limit               MemoryMax                   bytes; -1 -> infinity
//	memory.reservation         MemoryLow                   bytes; -1 -> infinity
//	memory.swap                MemorySwapMax               swap-limit (spec is memory+swap)
//	cpu.shares                 CPUWeight                   SharesToWeight (as cpu.weight)
//	cpu.quota, cpu.period      CPUQuotaPerSecUSec          quota*1e6/period, rounded up to 10 ms
//	                           CPUQuotaPeriodUSec          period (systemd 242+)
//	pids.limit                 TasksMax                    >0 as is; -1 -> infinity
//	cpu.cpus, cpu.mems         AllowedCPUs/MemoryNodes     bitmask (systemd 244+)
//	blockIO.weight             IOWeight                    BlkioToIOWeight
//	unified (some keys)        see unifiedProps
//	the rest (devices, io.max, hugetlb, rdma...)           files only
//
//	devices                    DevicePolicy, DeviceAllow   when systemd can express the rules
//	                                                       exactly (see deviceProps); berth's
//	                                                       own eBPF program is attached anyway
func systemdProps(r *specs.LinuxResources, version int) ([]sd.Property, error) {
	if r == nil {
		return nil, nil
	}
	var props []sd.Property
	if mem := r.Memory; mem != nil {
		limit, swap, low := int64Or0(mem.Limit), int64Or0(mem.Swap), int64Or0(mem.Reservation)
		if limit != 0 {
			props = append(props, prop("MemoryMax", bytesOrInfinity(limit)))
		}
		if low != 0 {
			props = append(props, prop("MemoryLow", bytesOrInfinity(low)))
		}
		if swap != 0 || limit == -1 {
			switch {
			case swap == -1 || limit == -1:
				v := uint64(usecInfinity)
				if swap > 0 {
					v = uint64(swap)
				}
				props = append(props, prop("MemorySwapMax", v))
			case limit == 0:
				return nil, fmt.Errorf("linux.resources.memory.swap: cgroup v2 needs memory.limit too (swap is memory+swap)")
			case swap < limit:
				return nil, fmt.Errorf("linux.resources.memory.swap: %d is below memory.limit %d (swap is memory+swap)", swap, limit)
			default:
				props = append(props, prop("MemorySwapMax", uint64(swap-limit)))
			}
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			props = append(props, prop("CPUWeight", SharesToWeight(*cpu.Shares)))
		}
		quota, period := int64(0), uint64(0)
		if cpu.Quota != nil {
			quota = *cpu.Quota
		}
		if cpu.Period != nil {
			period = *cpu.Period
		}
		if period != 0 && version >= 242 {
			props = append(props, prop("CPUQuotaPeriodUSec", period))
		}
		if quota != 0 || period != 0 {
			props = append(props, prop("CPUQuotaPerSecUSec", quotaPerSec(quota, period)))
		}
		if version >= 244 {
			for _, c := range []struct{ field, name, list string }{
				{"cpus", "AllowedCPUs", cpu.Cpus}, {"mems", "AllowedMemoryNodes", cpu.Mems},
			} {
				if c.list == "" {
					continue
				}
				bits, err := listToBits(c.list)
				if err != nil {
					return nil, fmt.Errorf("linux.resources.cpu.%s: %w", c.field, err)
				}
				props = append(props, prop(c.name, bits))
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit != 0 {
		v := uint64(usecInfinity)
		if *r.Pids.Limit > 0 {
			v = uint64(*r.Pids.Limit)
		}
		props = append(props, prop("TasksMax", v))
	}
	if io := r.BlockIO; io != nil && io.Weight != nil && *io.Weight != 0 {
		props = append(props, prop("IOWeight", BlkioToIOWeight(*io.Weight)))
	}
	if dev, ok := deviceProps(r.Devices); ok {
		props = append(props, dev...)
	}
	unified, err := unifiedProps(r.Unified, version)
	if err != nil {
		return nil, err
	}
	return append(props, unified...), nil
}

// unifiedProps gives the unit the linux.resources.unified keys systemd has a property for (they
// are written to the files too, last, and win over the fields above, as they do there):
//
//	cpu.weight -> CPUWeight; cpu.max -> CPUQuotaPerSecUSec (+ CPUQuotaPeriodUSec);
//	cpuset.cpus, cpuset.mems -> AllowedCPUs, AllowedMemoryNodes (systemd 244+);
//	memory.min, .low, .high, .max, .swap.max -> MemoryMin, ...; pids.max -> TasksMax.
func unifiedProps(unified map[string]string, version int) ([]sd.Property, error) {
	var props []sd.Property
	bytesProp := map[string]string{"memory.min": "MemoryMin", "memory.low": "MemoryLow", "memory.high": "MemoryHigh",
		"memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax", "pids.max": "TasksMax"}
	for _, k := range sortedKeys(unified) {
		v := strings.TrimSpace(unified[k])
		bad := func() error {
			return fmt.Errorf("linux.resources.unified[%q]: %q is not a value systemd can take for it", k, unified[k])
		}
		switch k {
		case "cpu.weight":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, bad()
			}
			props = append(props, prop("CPUWeight", n))
		case "cpu.max":
			f := strings.Fields(v)
			if len(f) == 0 || len(f) > 2 {
				return nil, bad()
			}
			quota, period := int64(-1), uint64(0)
			if f[0] != "max" {
				q, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil || q <= 0 {
					return nil, bad()
				}
				quota = q
			}
			if len(f) == 2 {
				p, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil || p == 0 {
					return nil, bad()
				}
				period = p
			}
			if period != 0 && version >= 242 {
				props = append(props, prop("CPUQuotaPeriodUSec", period))
			}
			props = append(props, prop("CPUQuotaPerSecUSec", quotaPerSec(quota, period)))
		case "cpuset.cpus", "cpuset.mems":
			if version < 244 {
				continue
			}
			bits, err := listToBits(v)
			if err != nil {
				return nil, bad()
			}
			name := "AllowedCPUs"
			if k == "cpuset.mems" {
				name = "AllowedMemoryNodes"
			}
			props = append(props, prop(name, bits))
		default:
			name, ok := bytesProp[k]
			if !ok {
				continue // files only
			}
			n := uint64(usecInfinity)
			if v != "max" {
				var err error
				if n, err = strconv.ParseUint(v, 10, 64); err != nil {
					return nil, bad()
				}
			}
			props = append(props, prop(name, n))
		}
	}
	return props, nil
}

func int64Or0(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func bytesOrInfinity(v int64) uint64 {
	if v < 0 {
		return usecInfinity
	}
	return uint64(v)
}

// quotaPerSec is CPU time per second of wall time, as CPUQuotaPerSecUSec wants it. systemd
// keeps it as a whole percentage of a CPU, so it is rounded up to 10 ms: the cpu.max systemd
// writes then never allows less than the spec asks (the file then gets the exact value).
func quotaPerSec(quota int64, period uint64) uint64 {
	if quota <= 0 {
		return usecInfinity
	}
	if period == 0 {
		period = 100000
	}
	v := uint64(quota) * 1000000 / period
	if r := v % 10000; r != 0 {
		v += 10000 - r
	}
	return v
}

// listToBits turns a cpu or node list ("0-2,7") into the little-endian bitmask systemd's
// AllowedCPUs and AllowedMemoryNodes take (bit n of byte n/8).
func listToBits(list string) ([]byte, error) {
	var bits []byte
	for _, r := range strings.Split(strings.TrimSpace(list), ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(r), "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q is not a list such as 0-2,7", list)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a list such as 0-2,7", list)
			}
		}
		for n := a; n <= b; n++ {
			for int(n/8) >= len(bits) {
				bits = append(bits, 0)
			}
			bits[n/8] |= 1 << (n % 8)
		}
	}
	return bits, nil
}

// annotationPrefix marks an annotation that is a property of the container's unit, as runc
// reads them: "org.systemd.property.TimeoutStopUSec": "uint64 10000000" (the value in D-Bus's
// variant text form). A name ending in a lowercase letter and "Sec" is a number of seconds that
// systemd takes as "...USec" (TimeoutStopSec=5 is TimeoutStopUSec=5000000).
const annotationPrefix = "org.systemd.property."

func annotationProps(annotations map[string]string) ([]sd.Property, error) {
	var props []sd.Property
	for _, k := range sortedKeys(annotations) {
		name, ok := strings.CutPrefix(k, annotationPrefix)
		if !ok {
			continue
		}
		if len(name) < 3 || strings.IndexFunc(name, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) >= 0 {
			return nil, fmt.Errorf("annotations[%q]: %q is not a systemd property name (letters only)", k, name)
		}
		v, err := dbus.ParseVariant(annotations[k], dbus.Signature{})
		if err != nil {
			return nil, fmt.Errorf("annotations[%q]: %q is not a D-Bus value (e.g. \"uint64 10\", \"'text'\", \"true\"): %w", k, annotations[k], err)
		}
		if base, ok := strings.CutSuffix(name, "Sec"); ok && base[len(base)-1] >= 'a' && base[len(base)-1] <= 'z' {
			usec, ok := secondsToUSec(v.Value())
			if !ok {
				return nil, fmt.Errorf("annotations[%q]: %q is not a number of seconds", k, annotations[k])
			}
			name, v = base+"USec", dbus.MakeVariant(usec)
		}
		props = append(props, sd.Property{Name: name, Value: v})
	}
	return props, nil
}

func secondsToUSec(v any) (uint64, bool) {
	const m = 1000000
	switch n := v.(type) {
	case byte:
		return uint64(n) * m, true
	case int16:
		return uint64(n) * m, n >= 0
	case uint16:
		return uint64(n) * m, true
	case int32:
		return uint64(n) * m, n >= 0
	case uint32:
		return uint64(n) * m, true
	case int64:
		return uint64(n) * m, n >= 0
	case uint64:
		return n * m, true
	case float64:
		return uint64(n * m), n >= 0
	}
	return 0, false
}

// UseAnnotations takes the unit properties a container's annotations give
// (org.systemd.property.*) for the scope Create starts; a bad one is an error naming it. With
// the cgroupfs driver they mean nothing and are ignored, as with runc.
func UseAnnotations(m Manager, annotations map[string]string) error {
	s, ok := m.(*systemd)
	if !ok {
		return nil
	}
	props, err := annotationProps(annotations)
	s.extra = props
	return err
}
