package cgroups

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// cgroup v2 has no devices.allow/deny files: device access is decided by
// BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the group, run by the kernel on every
// open(2) and mknod(2) of a device node. berth compiles linux.resources.devices into one such
// program, as runc and crun do.
//
// Semantics (runc's, which are v1's): the rules are applied in order over a default of "deny
// everything", so for each access bit (r, w, m) of a request the last rule that matches the
// device (type, major, minor; "a" or an absent number is a wildcard) and holds that bit decides
// it. A request is allowed only when every bit it asks for is allowed.
//
// The program walks the rules from the last to the first, keeping the requested bits not yet
// decided in R6: an allow rule that matches clears its bits (all cleared: allow); a deny rule
// that matches any still-undecided bit denies. Nothing left to match: deny.

// bpf_cgroup_dev_ctx: u32 access_type (type in the low 16 bits, access in the high 16), u32
// major, u32 minor.
const (
	devBlock   = int32(unix.BPF_DEVCG_DEV_BLOCK)
	devChar    = int32(unix.BPF_DEVCG_DEV_CHAR)
	accMknod   = int32(unix.BPF_DEVCG_ACC_MKNOD)
	accRead    = int32(unix.BPF_DEVCG_ACC_READ)
	accWrite   = int32(unix.BPF_DEVCG_ACC_WRITE)
	accAll     = accMknod | accRead | accWrite
	devLicense = "Apache"
)

// deviceRule is one validated linux.resources.devices entry.
type deviceRule struct {
	allow        bool
	typ          int32 // 0: any ("a")
	major, minor int64 // -1: any
	access       int32
}

// parseDeviceRules validates linux.resources.devices. An access string may only hold r, w and m
// on cgroup v2 (the program has no other bit to test); on v1 (v1 set) other letters are passed
// over, as runc's v1 driver does ("rwa" is "rw"), since runc's suite and older configs carry
// them.
func parseDeviceRules(rules []specs.LinuxDeviceCgroup, v1 bool) ([]deviceRule, error) {
	out := make([]deviceRule, 0, len(rules))
	for i, r := range rules {
		d := deviceRule{allow: r.Allow, major: -1, minor: -1}
		switch r.Type {
		case "", "a":
		case "b":
			d.typ = devBlock
		case "c":
			d.typ = devChar
		default:
			return nil, fmt.Errorf("linux.resources.devices[%d].type: %q is not a, b or c", i, r.Type)
		}
		if d.typ != 0 {
			if r.Major != nil && *r.Major >= 0 {
				if *r.Major > 1<<31-1 {
					return nil, fmt.Errorf("linux.resources.devices[%d].major: %d is out of range", i, *r.Major)
				}
				d.major = *r.Major
			}
			if r.Minor != nil && *r.Minor >= 0 {
				if *r.Minor > 1<<31-1 {
					return nil, fmt.Errorf("linux.resources.devices[%d].minor: %d is out of range", i, *r.Minor)
				}
				d.minor = *r.Minor
			}
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				d.access |= accRead
			case 'w':
				d.access |= accWrite
			case 'm':
				d.access |= accMknod
			default:
				if !v1 {
					return nil, fmt.Errorf("linux.resources.devices[%d].access: %q holds %q (only r, w and m)", i, r.Access, c)
				}
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// deviceFilter compiles the rules into the program's instructions.
func deviceFilter(rules []deviceRule) asm.Instructions {
	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // R2 = type
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word), // R3 = access
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // R4 = major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // R5 = minor
		asm.Mov.Reg(asm.R6, asm.R3),              // R6 = requested bits not yet decided
	}
	label := func(i int) string { return "rule-" + strconv.Itoa(i) }
	deny := label(len(rules)) // the end: nothing (else) matched
	allows := false
	for n, i := 0, len(rules)-1; i >= 0; n, i = n+1, i-1 {
		r := rules[i]
		next := label(n + 1)
		var block asm.Instructions
		if r.typ != 0 {
			block = append(block, asm.JNE.Imm(asm.R2, r.typ, next))
		}
		if r.major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.major), next))
		}
		if r.minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.minor), next))
		}
		if r.allow {
			allows = true
			block = append(block,
				asm.And.Imm(asm.R6, ^r.access&accAll),
				asm.JEq.Imm(asm.R6, 0, "allow"))
		} else {
			block = append(block,
				asm.Mov.Reg(asm.R1, asm.R6),
				asm.And.Imm(asm.R1, r.access),
				asm.JNE.Imm(asm.R1, 0, deny))
		}
		block[0] = block[0].WithSymbol(label(n))
		insts = append(insts, block...)
	}
	insts = append(insts,
		asm.Mov.Imm(asm.R0, 0).WithSymbol(deny),
		asm.Return(),
	)
	if allows {
		// The verifier refuses unreachable code: this block only exists when jumped to.
		insts = append(insts,
			asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
			asm.Return(),
		)
	}
	return insts
}

// setDevicesBPF replaces the device program of the group at dir with one made from rules. The
// new program is attached (BPF_F_ALLOW_MULTI, as runc) before the old ones are detached, so
// the group is never left without a filter.
func setDevicesBPF(dir string, rules []specs.LinuxDeviceCgroup) error {
	parsed, err := parseDeviceRules(rules, false)
	if err != nil {
		return err
	}
	var desc []string
	for _, r := range rules {
		desc = append(desc, ruleString(r))
	}
	explain.Stepf("cgroups.setDevicesBPF", "attach a BPF_PROG_TYPE_CGROUP_DEVICE program to %s: default deny, then %s", dir, strings.Join(desc, ", "))
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "berth_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: deviceFilter(parsed),
		License:      devLicense,
	})
	if err != nil {
		return fmt.Errorf("linux.resources.devices: loading the device eBPF program: %w", err)
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	defer unix.Close(fd)
	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("linux.resources.devices: listing device programs of %s: %w", dir, err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("linux.resources.devices: attaching the device eBPF program to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old.Programs {
		op, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: op, Attach: ebpf.AttachCGroupDevice})
		op.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linux.resources.devices: detaching the previous device program: %w", err)
	}
	return nil
}

// ruleString is a rule as v1's devices.allow would take it, for explain.
func ruleString(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	return fmt.Sprintf("%s %s %s:%s %s", verb, typ, num(r.Major), num(r.Minor), access)
}

// v1String is the rule as devices.allow and devices.deny take it ("c 1:3 rwm", "a").
func (d deviceRule) v1String() string {
	if d.typ == 0 {
		return "a"
	}
	typ := "c"
	if d.typ == devBlock {
		typ = "b"
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	access := ""
	for _, a := range []struct {
		bit int32
		c   string
	}{{accRead, "r"}, {accWrite, "w"}, {accMknod, "m"}} {
		if d.access&a.bit != 0 {
			access += a.c
		}
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(d.major), num(d.minor), access)
}
