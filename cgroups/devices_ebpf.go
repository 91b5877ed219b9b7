package cgroups

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

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

// deviceFilter compiles the rules into the program (ebpf.go's assembler).
func deviceFilter(rules []deviceRule) *asmProg {
	p := newAsm()
	p.add(
		ldxW(r2, r1, 0), // R2 = type
		alu32Imm(unix.BPF_AND, r2, 0xffff),
		ldxW(r3, r1, 0), // R3 = access
		alu32Imm(unix.BPF_RSH, r3, 16),
		ldxW(r4, r1, 4),  // R4 = major
		ldxW(r5, r1, 8),  // R5 = minor
		mov64Reg(r6, r3), // R6 = requested bits not yet decided
	)
	label := func(i int) string { return "rule-" + strconv.Itoa(i) }
	deny := label(len(rules)) // the end: nothing (else) matched
	allows := false
	for n, i := 0, len(rules)-1; i >= 0; n, i = n+1, i-1 {
		r := rules[i]
		next := label(n + 1)
		p.label(label(n))
		if r.typ != 0 {
			p.jump(jmpImm(unix.BPF_JNE, r2, r.typ), next)
		}
		if r.major >= 0 {
			p.jump(jmpImm(unix.BPF_JNE, r4, int32(r.major)), next)
		}
		if r.minor >= 0 {
			p.jump(jmpImm(unix.BPF_JNE, r5, int32(r.minor)), next)
		}
		if r.allow {
			allows = true
			p.add(alu64Imm(unix.BPF_AND, r6, ^r.access&accAll))
			p.jump(jmpImm(unix.BPF_JEQ, r6, 0), "allow")
		} else {
			p.add(mov64Reg(r1, r6), alu64Imm(unix.BPF_AND, r1, r.access))
			p.jump(jmpImm(unix.BPF_JNE, r1, 0), deny)
		}
	}
	p.label(deny)
	p.add(alu64Imm(unix.BPF_MOV, r0, 0), exit())
	if allows {
		// The verifier refuses unreachable code: this block only exists when jumped to.
		p.label("allow")
		p.add(alu64Imm(unix.BPF_MOV, r0, 1), exit())
	}
	return p
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
	code, err := deviceFilter(parsed).assemble()
	if err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	prog, err := loadProgram(unix.BPF_PROG_TYPE_CGROUP_DEVICE, "berth_devices", code, devLicense)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: loading the device eBPF program: %w", err)
	}
	defer unix.Close(prog)
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	defer unix.Close(fd)
	old, err := queryPrograms(fd, unix.BPF_CGROUP_DEVICE)
	if err != nil {
		return fmt.Errorf("linux.resources.devices: listing device programs of %s: %w", dir, err)
	}
	if err := attachProgram(fd, prog, unix.BPF_CGROUP_DEVICE, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("linux.resources.devices: attaching the device eBPF program to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		op, err := programFd(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = detachProgram(fd, op, unix.BPF_CGROUP_DEVICE)
		unix.Close(op)
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
