package libcontainer

import (
	"errors"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/explain"
)

// Update changes the resource limits of a live container: r is merged into the resources the
// container was created (or last updated) with — a field r leaves out keeps its value — the
// result is written to its cgroup, and recorded in state.json. The container must be locked
// (Load). As in runc, every limit is written again, not only the ones that changed, so the
// cgroup and the record agree afterwards; device rules are only touched when r holds some.
func (c *Container) Update(r *specs.LinuxResources) error {
	if r == nil {
		return errors.New("update: no resources given")
	}
	switch st := c.status(); st {
	case Stopped:
		return errors.New("container not running") // runc's words, which callers match
	case Creating:
		return fmt.Errorf("container %q is %s: only a created, running or paused container can be updated", c.ID, st)
	}
	spec, err := c.State.Spec()
	if err != nil {
		return err
	}
	if spec == nil {
		return fmt.Errorf("container %q: its state holds no config", c.ID)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	var old specs.LinuxResources
	if spec.Linux.Resources != nil {
		old = *spec.Linux.Resources
	}
	merged := MergeResources(old, r)
	liftSwap(&merged, r)
	explain.Stepf("libcontainer.Update", "merge the new %s into the limits in state.json; every limit is written again", strings.Join(resourceKinds(r), ", "))
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	apply := merged
	if len(r.Devices) > 0 {
		// New rules replace the old program, with the default devices kept usable as at
		// create.
		s := *spec
		l := *spec.Linux
		l.Resources = &merged
		s.Linux = &l
		apply = *cgroupResources(&s)
	} else {
		apply.Devices = nil
	}
	if r.CPU != nil && r.CPU.Idle != nil && r.CPU.Shares == nil && apply.CPU != nil {
		// As runc: the kernel refuses a weight for an idle group, so the recorded shares are
		// not written again along with a new idle setting.
		cpu := *apply.CPU
		cpu.Shares = nil
		apply.CPU = &cpu
	}
	if err := cg.Set(&apply); err != nil {
		return err
	}
	spec.Linux.Resources = &merged
	explain.Stepf("libcontainer.Update", "write %s/state.json with the merged limits", c.dir)
	return c.State.save(c.dir)
}

// resourceKinds names the groups of limits r sets, as linux.resources spells them.
func resourceKinds(r *specs.LinuxResources) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(r.Memory != nil, "memory")
	add(r.CPU != nil, "cpu")
	add(r.Pids != nil, "pids")
	add(r.BlockIO != nil, "blockIO")
	add(len(r.HugepageLimits) > 0, "hugepageLimits")
	add(len(r.Devices) > 0, "devices")
	add(r.Network != nil, "network")
	add(len(r.Rdma) > 0, "rdma")
	add(len(r.Unified) > 0, "unified")
	if len(out) == 0 {
		out = append(out, "(no limits)")
	}
	return out
}

// liftSwap makes an update to unlimited memory (-1) that gives no swap lift the recorded
// memory+swap limit too, as runc does: a memory+swap limit below an unlimited memory cannot
// stand (the kernel refuses it on v1).
func liftSwap(merged *specs.LinuxResources, r *specs.LinuxResources) {
	m := merged.Memory
	if r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit != -1 || r.Memory.Swap != nil || m == nil {
		return
	}
	if m.Swap != nil && *m.Swap != 0 && *m.Swap != -1 {
		unlimited := int64(-1)
		m.Swap = &unlimited
	}
}

// MergeResources returns old with every field r sets replaced: pointers that are not nil,
// strings that are not empty, per-device entries by device (major:minor), huge page limits by
// page size, rdma and unified entries by key. Device rules in r replace old's.
func MergeResources(old specs.LinuxResources, r *specs.LinuxResources) specs.LinuxResources {
	out := old
	if len(r.Devices) > 0 {
		out.Devices = append([]specs.LinuxDeviceCgroup{}, r.Devices...)
	}
	if m := r.Memory; m != nil {
		var n specs.LinuxMemory
		if out.Memory != nil {
			n = *out.Memory
		}
		setPtr(&n.Limit, m.Limit)
		setPtr(&n.Reservation, m.Reservation)
		setPtr(&n.Swap, m.Swap)
		setPtr(&n.Kernel, m.Kernel) //nolint:staticcheck // kept as given; the cgroup manager warns
		setPtr(&n.KernelTCP, m.KernelTCP)
		setPtr(&n.Swappiness, m.Swappiness)
		setPtr(&n.DisableOOMKiller, m.DisableOOMKiller)
		setPtr(&n.UseHierarchy, m.UseHierarchy)
		setPtr(&n.CheckBeforeUpdate, m.CheckBeforeUpdate)
		out.Memory = &n
	}
	if c := r.CPU; c != nil {
		var n specs.LinuxCPU
		if out.CPU != nil {
			n = *out.CPU
		}
		setPtr(&n.Shares, c.Shares)
		setPtr(&n.Quota, c.Quota)
		setPtr(&n.Burst, c.Burst)
		setPtr(&n.Period, c.Period)
		setPtr(&n.RealtimeRuntime, c.RealtimeRuntime)
		setPtr(&n.RealtimePeriod, c.RealtimePeriod)
		setPtr(&n.Idle, c.Idle)
		if c.Cpus != "" {
			n.Cpus = c.Cpus
		}
		if c.Mems != "" {
			n.Mems = c.Mems
		}
		out.CPU = &n
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		out.Pids = &specs.LinuxPids{Limit: p.Limit}
	}
	if b := r.BlockIO; b != nil {
		var n specs.LinuxBlockIO
		if out.BlockIO != nil {
			n = *out.BlockIO
		}
		setPtr(&n.Weight, b.Weight)
		setPtr(&n.LeafWeight, b.LeafWeight)
		n.WeightDevice = append([]specs.LinuxWeightDevice{}, n.WeightDevice...)
		for _, d := range b.WeightDevice {
			i := 0
			for i < len(n.WeightDevice) && (n.WeightDevice[i].Major != d.Major || n.WeightDevice[i].Minor != d.Minor) {
				i++
			}
			if i == len(n.WeightDevice) {
				n.WeightDevice = append(n.WeightDevice, d)
			} else {
				setPtr(&n.WeightDevice[i].Weight, d.Weight)
				setPtr(&n.WeightDevice[i].LeafWeight, d.LeafWeight)
			}
		}
		n.ThrottleReadBpsDevice = upsertThrottle(n.ThrottleReadBpsDevice, b.ThrottleReadBpsDevice)
		n.ThrottleWriteBpsDevice = upsertThrottle(n.ThrottleWriteBpsDevice, b.ThrottleWriteBpsDevice)
		n.ThrottleReadIOPSDevice = upsertThrottle(n.ThrottleReadIOPSDevice, b.ThrottleReadIOPSDevice)
		n.ThrottleWriteIOPSDevice = upsertThrottle(n.ThrottleWriteIOPSDevice, b.ThrottleWriteIOPSDevice)
		out.BlockIO = &n
	}
	if len(r.HugepageLimits) > 0 {
		out.HugepageLimits = append([]specs.LinuxHugepageLimit{}, out.HugepageLimits...)
		for _, h := range r.HugepageLimits {
			i := 0
			for i < len(out.HugepageLimits) && out.HugepageLimits[i].Pagesize != h.Pagesize {
				i++
			}
			if i == len(out.HugepageLimits) {
				out.HugepageLimits = append(out.HugepageLimits, h)
			} else {
				out.HugepageLimits[i] = h
			}
		}
	}
	if n := r.Network; n != nil {
		var m specs.LinuxNetwork
		if out.Network != nil {
			m = *out.Network
		}
		setPtr(&m.ClassID, n.ClassID)
		if len(n.Priorities) > 0 {
			m.Priorities = n.Priorities
		}
		out.Network = &m
	}
	out.Rdma = mergeMap(out.Rdma, r.Rdma)
	out.Unified = mergeMap(out.Unified, r.Unified)
	return out
}

func setPtr[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

func upsertThrottle(old, add []specs.LinuxThrottleDevice) []specs.LinuxThrottleDevice {
	out := append([]specs.LinuxThrottleDevice{}, old...)
	for _, d := range add {
		i := 0
		for i < len(out) && (out[i].Major != d.Major || out[i].Minor != d.Minor) {
			i++
		}
		if i == len(out) {
			out = append(out, d)
		} else {
			out[i].Rate = d.Rate
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func mergeMap[V any](old, add map[string]V) map[string]V {
	if len(add) == 0 {
		return old
	}
	out := make(map[string]V, len(old)+len(add))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}
