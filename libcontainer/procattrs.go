package libcontainer

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// The process attributes beyond user and capabilities: personality, scheduler, I/O priority,
// NUMA memory policy and LSM labels. validateAttrs checks them (and what the host can do) in
// berth create, before anything exists; applyContainerAttrs and applyProcessAttrs set them in the init or exec process.

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

var mpolModes = map[specs.MemoryPolicyModeType]int{
	specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
	specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
}

var mpolFlags = map[specs.MemoryPolicyFlagType]int{
	specs.MpolFStaticNodes: 1 << 15, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFNumaBalancing: 1 << 13,
}

// validateAttrs checks the attributes of a process (and, with linux, the container's).
func validateAttrs(p *specs.Process, linux *specs.Linux) error {
	if s := p.Scheduler; s != nil {
		if _, ok := schedPolicies[s.Policy]; !ok {
			return fmt.Errorf("process.scheduler.policy: unknown policy %q", s.Policy)
		}
		for i, f := range s.Flags {
			if _, ok := schedFlags[f]; !ok {
				return fmt.Errorf("process.scheduler.flags[%d]: unknown flag %q", i, f)
			}
		}
		if s.Nice < -20 || s.Nice > 19 {
			return fmt.Errorf("process.scheduler.nice: %d is outside [-20, 19]", s.Nice)
		}
	}
	if io := p.IOPriority; io != nil {
		if _, ok := ioprioClasses[io.Class]; !ok {
			return fmt.Errorf("process.ioPriority.class: unknown class %q", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			return fmt.Errorf("process.ioPriority.priority: %d is outside [0, 7]", io.Priority)
		}
	}
	if p.ApparmorProfile != "" && !apparmorEnabled() {
		return fmt.Errorf("process.apparmorProfile: %q asked for, but AppArmor is not enabled on this host", p.ApparmorProfile)
	}
	if p.SelinuxLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("process.selinuxLabel: %q asked for, but SELinux is not enabled on this host", p.SelinuxLabel)
	}
	if linux == nil {
		return nil
	}
	if linux.MountLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("linux.mountLabel: %q asked for, but SELinux is not enabled on this host", linux.MountLabel)
	}
	if per := linux.Personality; per != nil {
		if per.Domain != specs.PerLinux && per.Domain != specs.PerLinux32 {
			return fmt.Errorf("linux.personality.domain: %q must be LINUX or LINUX32", per.Domain)
		}
		if len(per.Flags) > 0 {
			return fmt.Errorf("linux.personality.flags: %q: no flags are defined", per.Flags[0])
		}
	}
	if mp := linux.MemoryPolicy; mp != nil {
		if _, ok := mpolModes[mp.Mode]; !ok {
			return fmt.Errorf("linux.memoryPolicy.mode: unknown mode %q", mp.Mode)
		}
		for i, f := range mp.Flags {
			if _, ok := mpolFlags[f]; !ok {
				return fmt.Errorf("linux.memoryPolicy.flags[%d]: unknown flag %q", i, f)
			}
		}
		if _, err := parseNodes(mp.Nodes); err != nil {
			return fmt.Errorf("linux.memoryPolicy.nodes: %w", err)
		}
	}
	if linux.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: Intel RDT (resctrl) is not supported by berth")
	}
	if len(linux.NetDevices) > 0 {
		return fmt.Errorf("linux.netDevices: moving network devices is not supported by berth yet")
	}
	return nil
}

// LSMs says whether this host has AppArmor and SELinux, which berth then applies.
func LSMs() (apparmor, selinux bool) { return apparmorEnabled(), selinuxEnabled() }

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// applyContainerAttrs sets what config.json gives the whole container (the init only).
func applyContainerAttrs(linux *specs.Linux) error {
	if per := linux.Personality; per != nil {
		dom := uintptr(0) // PER_LINUX
		if per.Domain == specs.PerLinux32 {
			dom = 0x0008 // PER_LINUX32
		}
		explain.Stepf("libcontainer.applyContainerAttrs", "personality(%s)", per.Domain)
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
			return fmt.Errorf("linux.personality: %w", e)
		}
	}
	if mp := linux.MemoryPolicy; mp != nil {
		mode := mpolModes[mp.Mode]
		for _, f := range mp.Flags {
			mode |= mpolFlags[f]
		}
		mask, _ := parseNodes(mp.Nodes)
		var ptr uintptr
		if len(mask) > 0 {
			ptr = uintptr(unsafe.Pointer(&mask[0]))
		}
		explain.Stepf("libcontainer.applyContainerAttrs", "set_mempolicy(%s, nodes %q)", mp.Mode, mp.Nodes)
		if _, _, e := unix.RawSyscall(unix.SYS_SET_MEMPOLICY, uintptr(mode), ptr, uintptr(len(mask)*64+1)); e != 0 {
			return fmt.Errorf("linux.memoryPolicy: set_mempolicy: %w", e)
		}
	}
	return nil
}

// applyProcessAttrs sets the process's scheduler and I/O priority. It runs while the init
// still has its capabilities (a real-time policy needs CAP_SYS_NICE).
func applyProcessAttrs(p *specs.Process) error {
	if s := p.Scheduler; s != nil {
		attr := struct {
			size, policy      uint32
			flags             uint64
			nice              int32
			priority          uint32
			runtime, deadline uint64
			period            uint64
		}{size: 48, policy: schedPolicies[s.Policy], nice: s.Nice, priority: uint32(s.Priority),
			runtime: s.Runtime, deadline: s.Deadline, period: s.Period}
		for _, f := range s.Flags {
			attr.flags |= schedFlags[f]
		}
		explain.Stepf("libcontainer.applyProcessAttrs", "sched_setattr(%s, nice %d, priority %d)", s.Policy, s.Nice, s.Priority)
		if _, _, e := unix.RawSyscall(unix.SYS_SCHED_SETATTR, 0, uintptr(unsafe.Pointer(&attr)), 0); e != 0 {
			return fmt.Errorf("process.scheduler: sched_setattr: %w", e)
		}
	}
	if io := p.IOPriority; io != nil {
		prio := ioprioClasses[io.Class]<<13 | io.Priority
		explain.Stepf("libcontainer.applyProcessAttrs", "ioprio_set(%s, %d)", io.Class, io.Priority)
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, 1 /* IOPRIO_WHO_PROCESS */, 0, uintptr(prio)); e != 0 {
			return fmt.Errorf("process.ioPriority: ioprio_set: %w", e)
		}
	}
	return nil
}

// applyLSMLabels arranges the process's AppArmor profile or SELinux label for its execve,
// the last step before it (the kernel applies attr/exec at exec).
func applyLSMLabels(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		explain.Stepf("libcontainer.applyLSMLabels", "echo 'exec %s' > /proc/thread-self/attr/apparmor/exec", p.ApparmorProfile)
		if err := writeAttr("apparmor/exec", "exec "+p.ApparmorProfile); err != nil {
			return fmt.Errorf("process.apparmorProfile: %w", err)
		}
	}
	if p.SelinuxLabel != "" {
		explain.Stepf("libcontainer.applyLSMLabels", "echo %s > /proc/thread-self/attr/exec", p.SelinuxLabel)
		if err := writeAttr("exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("process.selinuxLabel: %w", err)
		}
	}
	return nil
}

func writeAttr(name, value string) error {
	f, err := os.OpenFile("/proc/thread-self/attr/"+name, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(value)
	return err
}

// parseNodes reads a NUMA node list ("0-3,5") into a bitmask.
func parseNodes(s string) ([]uint64, error) {
	var mask []uint64
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a node list", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a node list", s)
			}
		}
		if b >= 1024 {
			return nil, fmt.Errorf("node %d is beyond 1023", b)
		}
		for n := a; n <= b; n++ {
			for len(mask) <= n/64 {
				mask = append(mask, 0)
			}
			mask[n/64] |= 1 << (n % 64)
		}
	}
	return mask, nil
}
