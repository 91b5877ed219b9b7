package seccomp

import (
	"errors"
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type arch int

const (
	archX86_64 arch = iota
	archX86
	archX32
	archForeign // a valid SCMP_ARCH_* this host cannot run natively: nothing to compile
)

func (a arch) String() string { return [...]string{"x86_64", "x86", "x32", "foreign"}[a] }

var archNames = map[specs.Arch]arch{
	specs.ArchX86_64: archX86_64,
	specs.ArchX86:    archX86,
	specs.ArchX32:    archX32,
	// Architectures an x86 kernel does not execute: no process of theirs can make a syscall
	// here, so they are accepted and add nothing to the filter.
	specs.ArchARM: archForeign, specs.ArchAARCH64: archForeign,
	specs.ArchMIPS: archForeign, specs.ArchMIPS64: archForeign, specs.ArchMIPS64N32: archForeign,
	specs.ArchMIPSEL: archForeign, specs.ArchMIPSEL64: archForeign, specs.ArchMIPSEL64N32: archForeign,
	specs.ArchPPC: archForeign, specs.ArchPPC64: archForeign, specs.ArchPPC64LE: archForeign,
	specs.ArchS390: archForeign, specs.ArchS390X: archForeign,
	specs.ArchPARISC: archForeign, specs.ArchPARISC64: archForeign,
	specs.ArchRISCV64: archForeign, specs.ArchLOONGARCH64: archForeign,
	specs.ArchM68K: archForeign, specs.ArchSH: archForeign, specs.ArchSHEB: archForeign,
}

// Seccomp return values (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	// badArchAction is what a syscall made under an architecture the filter does not list
	// gets: libseccomp's default bad-architecture action, SCMP_ACT_KILL.
	badArchAction = retKillThread
)

var flagValues = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// errnoError is an actionValue error about errnoRet rather than the action.
type errnoError struct{ error }

// actionValue is the seccomp return value for a spec action. errnoRet may be nil (EPERM).
func actionValue(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	var v uint32
	switch a {
	case specs.ActKill, specs.ActKillThread:
		v = retKillThread
	case specs.ActKillProcess:
		v = retKillProcess
	case specs.ActTrap:
		v = retTrap
	case specs.ActErrno:
		v = retErrno
	case specs.ActTrace:
		v = retTrace
	case specs.ActAllow:
		v = retAllow
	case specs.ActLog:
		v = retLog
	case specs.ActNotify:
		v = retUserNotif
	case "":
		return 0, errors.New("is required")
	default:
		return 0, fmt.Errorf("unknown action %q", a)
	}
	if a != specs.ActErrno && a != specs.ActTrace {
		if errnoRet != nil {
			return 0, errnoError{fmt.Errorf("%s takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)", a)}
		}
		return v, nil
	}
	data := uint(unix.EPERM)
	if errnoRet != nil {
		data = *errnoRet
	}
	if data > 0xffff {
		return 0, errnoError{fmt.Errorf("%d does not fit the 16 bits seccomp returns", data)}
	}
	return v | uint32(data), nil
}

var knownOps = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

// Validate checks cfg the way Compile reads it, naming the offending field
// (linux.seccomp.syscalls[3].action ...). A nil cfg is valid: no filter.
func Validate(cfg *specs.LinuxSeccomp) error {
	_, err := compile(cfg, false)
	return err
}

// Filter is a compiled seccomp program with the seccomp(2) flags to install it with.
type Filter struct {
	prog   []unix.SockFilter
	flags  uint
	notify bool
}

// Instructions returns the classic BPF program (struct sock_filter array).
func (f *Filter) Instructions() []unix.SockFilter { return f.prog }

// Flags returns the flags passed to seccomp(SECCOMP_SET_MODE_FILTER, ...), including
// SECCOMP_FILTER_FLAG_NEW_LISTENER when an action is SCMP_ACT_NOTIFY.
func (f *Filter) Flags() uint { return f.flags }

// Notify reports whether the filter has an SCMP_ACT_NOTIFY action, that is, whether
// Install returns a listener fd.
func (f *Filter) Notify() bool { return f.notify }

// Compile validates cfg and compiles it into a classic BPF filter. A nil cfg gives a nil
// Filter (nothing to install).
func Compile(cfg *specs.LinuxSeccomp) (*Filter, error) {
	return compile(cfg, true)
}

// nativeArch is the architecture of this process, always part of the filter as libseccomp
// (and so runc) always includes it.
func nativeArch() (arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "386":
		return archX86, nil
	}
	return 0, fmt.Errorf("linux.seccomp: no syscall table for %s; this compiler knows x86_64, x86 and x32", runtime.GOARCH)
}

// rule is one OR'd alternative for a syscall: the action when every condition holds.
type rule struct {
	act   uint32
	conds []specs.LinuxSeccompArg
}

// A slot is everything a syscall number of an architecture is filtered by. As libseccomp
// builds it (and so runc): an unconditional action, if any, applies to every call and the
// conditional rules are dropped; of several unconditional actions the first stays.
// Otherwise the conditional rules are checked in the order of the profile, the first that
// matches decides, and the default action applies when none does.
type slot struct {
	uncond    uint32
	conds     int16 // 1 + index in ruleTable.conds, 0 for none
	hasUncond bool
}

// ruleTable holds the slots of each architecture's syscall numbers (without the x32 bit);
// slots[arch] is nil for an architecture not in the filter.
type ruleTable struct {
	slots [3][]slot
	conds [][]rule
	// last is the highest syscall number the profile names on each architecture (any
	// action), 0 for none: runc's -ENOSYS stub answers every number above it.
	last [3]uint32
}

func (t *ruleTable) addCond(a arch, nr uint32, r ...rule) {
	sl := &t.slots[a][nr&^x32SyscallBit]
	if sl.conds == 0 {
		t.conds = append(t.conds, nil)
		sl.conds = int16(len(t.conds))
	}
	t.conds[sl.conds-1] = append(t.conds[sl.conds-1], r...)
}

func (t *ruleTable) setUncond(a arch, nr uint32, act uint32) {
	if sl := &t.slots[a][nr&^x32SyscallBit]; !sl.hasUncond {
		sl.uncond, sl.hasUncond = act, true
	}
}

func compile(cfg *specs.LinuxSeccomp, emit bool) (*Filter, error) {
	if cfg == nil {
		return nil, nil
	}
	const field = "linux.seccomp"
	def, err := actionValue(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		if errors.As(err, new(errnoError)) {
			return nil, fmt.Errorf("%s.defaultErrnoRet: %w", field, err)
		}
		return nil, fmt.Errorf("%s.defaultAction: %w", field, err)
	}
	if cfg.DefaultAction == specs.ActNotify {
		// Every syscall the runtime makes after installing the filter would wait for an
		// agent that has not received the listener yet.
		return nil, fmt.Errorf("%s.defaultAction: SCMP_ACT_NOTIFY cannot be the default action", field)
	}
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	var archs [3]bool
	archs[native] = true
	for i, a := range cfg.Architectures {
		v, ok := archNames[a]
		if !ok {
			return nil, fmt.Errorf("%s.architectures[%d]: unknown architecture %q", field, i, a)
		}
		if v != archForeign {
			archs[v] = true
		}
	}
	var flags uint
	for i, fl := range cfg.Flags {
		v, ok := flagValues[fl]
		if !ok {
			return nil, fmt.Errorf("%s.flags[%d]: unknown flag %q", field, i, fl)
		}
		flags |= v
	}
	if cfg.ListenerMetadata != "" && cfg.ListenerPath == "" {
		return nil, fmt.Errorf("%s.listenerMetadata: set without listenerPath", field)
	}

	var table ruleTable
	if emit {
		for a := range table.slots {
			if archs[a] {
				table.slots[a] = make([]slot, syscallMax+1)
			}
		}
	}
	notify := false
	for i, sc := range cfg.Syscalls {
		f := fmt.Sprintf("%s.syscalls[%d]", field, i)
		act, err := actionValue(sc.Action, sc.ErrnoRet)
		if err != nil {
			if errors.As(err, new(errnoError)) {
				return nil, fmt.Errorf("%s.errnoRet: %w", f, err)
			}
			return nil, fmt.Errorf("%s.action: %w", f, err)
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s.names: at least one syscall name is required", f)
		}
		for j, n := range sc.Names {
			if n == "" {
				return nil, fmt.Errorf("%s.names[%d]: empty syscall name", f, j)
			}
		}
		counts := [6]int{}
		repeated := false
		for j, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("%s.args[%d].index: %d is out of range: syscalls have arguments 0 to 5", f, j, a.Index)
			}
			if !knownOps[a.Op] {
				return nil, fmt.Errorf("%s.args[%d].op: unknown operator %q", f, j, a.Op)
			}
			counts[a.Index]++
			repeated = repeated || counts[a.Index] > 1
		}
		if sc.Action == specs.ActNotify {
			if cfg.ListenerPath == "" {
				return nil, fmt.Errorf("%s.action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, where the runtime sends the listener fd", f)
			}
			// The runtime writes the listener's number to its parent once the filter is
			// in: a notified write would wait for an agent that never gets the listener.
			for j, n := range sc.Names {
				if n == "write" {
					return nil, fmt.Errorf("%s.names[%d]: SCMP_ACT_NOTIFY cannot be used for the write syscall", f, j)
				}
			}
		}
		// An entry with the default action is a no-op that runc skips too (libseccomp refuses
		// it); its names still count for the -ENOSYS stub.
		skip := act == def
		notify = notify || act == retUserNotif
		// Like runc: conditions on distinct arguments are AND'd in one rule; if an argument
		// index repeats, every condition becomes a rule of its own, and they are OR'd.
		var alts []rule
		switch {
		case len(sc.Args) == 0:
		case repeated:
			for _, a := range sc.Args {
				alts = append(alts, rule{act, []specs.LinuxSeccompArg{a}})
			}
		default:
			alts = []rule{{act, sc.Args}}
		}
		for _, name := range sc.Names {
			ei := syscallIndex(name)
			if ei < 0 {
				continue // like runc: a syscall this kernel/arch lacks is ignored
			}
			e := &syscallTable[ei]
			if mx, ok := x86Multiplexed[name]; ok && table.slots[archX86] != nil && !skip {
				table.addCond(archX86, mx.mux, rule{act, []specs.LinuxSeccompArg{{Index: 0, Value: uint64(mx.call), Op: specs.OpEqualTo}}})
			}
			for a := range table.slots {
				if table.slots[a] == nil {
					continue
				}
				nr, ok := e.number(arch(a))
				if !ok {
					continue // not on this architecture
				}
				table.last[a] = max(table.last[a], nr)
				if skip {
					continue
				}
				if len(alts) == 0 {
					table.setUncond(arch(a), nr, act)
				} else {
					table.addCond(arch(a), nr, alts...)
				}
			}
		}
	}
	if !emit {
		return nil, nil
	}
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			// The kernel refuses TSYNC with NEW_LISTENER unless a failed sync is
			// reported as ESRCH (the return value being the listener fd).
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	} else {
		// Meaningful only with a listener; the kernel refuses it without one.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	// runc's -ENOSYS stub: unless the default action lets syscalls through (or already
	// fails them with ENOSYS), a syscall numbered above every syscall the profile names
	// fails with ENOSYS rather than the default action. It is newer than the profile, and
	// ENOSYS makes libc fall back to an older call (clone3 → clone) where EPERM would not.
	enosys := !(cfg.DefaultAction == specs.ActAllow || cfg.DefaultAction == specs.ActLog || cfg.DefaultAction == specs.ActTrace ||
		cfg.DefaultErrnoRet != nil && *cfg.DefaultErrnoRet == uint(unix.ENOSYS))
	if !enosys {
		table.last = [3]uint32{}
	}
	prog, err := generate(native, archs, &table, def)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return &Filter{prog: prog, flags: flags, notify: notify}, nil
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// generate emits: a dispatch on seccomp_data.arch, then per architecture a binary search
// on the syscall number over ranges of numbers sharing one outcome, whose leaves return an
// action or check argument conditions.
func generate(native arch, archs [3]bool, table *ruleTable, def uint32) ([]unix.SockFilter, error) {
	a := asm{ins: make([]ainsn, 0, 1024), labels: make([]int, 0, 512)}
	a.ld(offArch)
	x64 := archs[archX86_64] || archs[archX32]
	lX64, lX86 := a.label(), a.label()
	order := []arch{archX86_64, archX86}
	if native == archX86 {
		order = []arch{archX86, archX86_64}
	}
	for _, o := range order {
		switch {
		case o == archX86_64 && x64:
			a.jmp(opJeq, unix.AUDIT_ARCH_X86_64, lX64, next)
		case o == archX86 && archs[archX86]:
			a.jmp(opJeq, unix.AUDIT_ARCH_I386, lX86, next)
		}
	}
	a.ret(badArchAction)
	if x64 {
		a.mark(lX64)
		a.ld(offNr)
		lX32 := a.label()
		// x32 syscalls carry __X32_SYSCALL_BIT under the same AUDIT_ARCH_X86_64.
		a.jmp(opJge, x32SyscallBit, lX32, next)
		if archs[archX86_64] {
			a.tree(table, archX86_64, 0, x32SyscallBit-1, def, false)
		} else {
			a.ret(badArchAction)
		}
		a.mark(lX32)
		if archs[archX32] {
			a.tree(table, archX32, x32SyscallBit, 0xffffffff, def, true)
		} else {
			// Number -1 (a tracer skipping the syscall; the filter runs again) is not taken
			// for an x32 call: as libseccomp (and so runc), the default action.
			lBad := a.label()
			a.jmp(opJeq, 0xffffffff, next, lBad)
			a.ret(def)
			a.mark(lBad)
			a.ret(badArchAction)
		}
	}
	if archs[archX86] {
		a.mark(lX86)
		a.ld(offNr)
		a.tree(table, archX86, 0, 0xffffffff, def, true)
	}
	return a.assemble()
}

// leaf is a range of syscall numbers [start, end] with one outcome: either the return value
// ret, or the argument checks of rules (a single number).
type leaf struct {
	start, end uint32
	ret        uint32
	conds      []rule
}

// tree emits the search over the syscall numbers lo..hi of ar (the number is in A); lo
// carries the x32 bit for x32.
func (a *asm) tree(t *ruleTable, ar arch, lo, hi uint32, def uint32, arg32 bool) {
	leaves := make([]leaf, 0, 256)
	add := func(l leaf) {
		if n := len(leaves); n > 0 && l.conds == nil && leaves[n-1].conds == nil && leaves[n-1].ret == l.ret {
			leaves[n-1].end = l.end
			return
		}
		leaves = append(leaves, l)
	}
	cur := lo
	for i := range t.slots[ar] {
		r := &t.slots[ar][i]
		if !r.hasUncond && r.conds == 0 {
			continue
		}
		nr := lo | uint32(i)
		if last := t.last[ar]; last != 0 && nr > last {
			// runc's stub answers ENOSYS above the last number the profile names, before
			// any rule: the socketcall and ipc rules of x86 (102, 117) included.
			break
		}
		if nr > cur {
			add(leaf{start: cur, end: nr - 1, ret: def})
		}
		if r.hasUncond {
			add(leaf{start: nr, end: nr, ret: r.uncond})
		} else {
			add(leaf{start: nr, end: nr, conds: t.conds[r.conds-1]})
		}
		cur = nr + 1
	}
	// hi is far above any syscall number, so a range of the default action ends the tree,
	// or of ENOSYS above the last syscall the profile names (runc's stub).
	if last := t.last[ar]; last != 0 {
		if cur <= last {
			add(leaf{start: cur, end: last, ret: def})
			cur = last + 1
		}
		add(leaf{start: cur, end: hi, ret: retErrno | uint32(unix.ENOSYS)})
	} else {
		add(leaf{start: cur, end: hi, ret: def})
	}
	a.search(leaves, def, arg32)
}

func (a *asm) search(leaves []leaf, def uint32, arg32 bool) {
	if len(leaves) == 1 {
		a.leaf(&leaves[0], def, arg32)
		return
	}
	mid := len(leaves) / 2
	right := a.label()
	a.jmp(opJge, leaves[mid].start, right, next)
	a.search(leaves[:mid], def, arg32)
	a.mark(right)
	a.search(leaves[mid:], def, arg32)
}

func (a *asm) leaf(l *leaf, def uint32, arg32 bool) {
	if l.conds == nil {
		a.ret(l.ret)
		return
	}
	for _, r := range l.conds {
		fail := a.label()
		for _, c := range r.conds {
			a.cond(c, fail, arg32)
		}
		a.ret(r.act)
		a.mark(fail)
	}
	a.ret(def)
}

// cond emits one argument comparison: it falls through when it holds and jumps to fail when
// not. Arguments are compared as unsigned 64-bit values, high word first; on 32-bit ABIs
// (x86, x32) only the low word, as libseccomp does.
func (a *asm) cond(c specs.LinuxSeccompArg, fail int, arg32 bool) {
	lo := uint32(offArgs + 8*c.Index)
	hi := lo + 4
	v, v2 := c.Value, c.ValueTwo
	if c.Op == specs.OpMaskedEqual {
		// As libseccomp (and so runc): the datum counts only within the mask, so that
		// arg & 0x30 == 0x1 is arg & 0x30 == 0, not a rule that never matches.
		v2 &= v
	}
	vl, vh := uint32(v), uint32(v>>32)
	if arg32 {
		a.ld(lo)
		switch c.Op {
		case specs.OpEqualTo:
			a.jmp(opJeq, vl, next, fail)
		case specs.OpNotEqual:
			a.jmp(opJeq, vl, fail, next)
		case specs.OpGreaterThan:
			a.jmp(opJgt, vl, next, fail)
		case specs.OpGreaterEqual:
			a.jmp(opJge, vl, next, fail)
		case specs.OpLessThan:
			a.jmp(opJge, vl, fail, next)
		case specs.OpLessEqual:
			a.jmp(opJgt, vl, fail, next)
		case specs.OpMaskedEqual:
			a.and(vl)
			a.jmp(opJeq, uint32(v2), next, fail)
		}
		return
	}
	pass := a.label()
	switch c.Op {
	case specs.OpEqualTo:
		a.ld(hi)
		a.jmp(opJeq, vh, next, fail)
		a.ld(lo)
		a.jmp(opJeq, vl, next, fail)
	case specs.OpNotEqual:
		a.ld(hi)
		a.jmp(opJeq, vh, next, pass)
		a.ld(lo)
		a.jmp(opJeq, vl, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.ld(hi)
		a.jmp(opJgt, vh, pass, next)
		a.jmp(opJeq, vh, next, fail)
		a.ld(lo)
		if c.Op == specs.OpGreaterThan {
			a.jmp(opJgt, vl, next, fail)
		} else {
			a.jmp(opJge, vl, next, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		a.ld(hi)
		a.jmp(opJgt, vh, fail, next)
		a.jmp(opJeq, vh, next, pass)
		a.ld(lo)
		if c.Op == specs.OpLessThan {
			a.jmp(opJge, vl, fail, next)
		} else {
			a.jmp(opJgt, vl, fail, next)
		}
	case specs.OpMaskedEqual:
		a.ld(hi)
		a.and(uint32(v >> 32))
		a.jmp(opJeq, uint32(v2>>32), next, fail)
		a.ld(lo)
		a.and(vl)
		a.jmp(opJeq, uint32(v2), next, fail)
	}
	a.mark(pass)
}
