package seccomp

import (
	"encoding/binary"
	"math/rand"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// run interprets a classic BPF seccomp program on one seccomp_data, the way the kernel does
// for the instructions a filter may contain.
func run(t *testing.T, prog []unix.SockFilter, data []byte) uint32 {
	var A uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case opLdW:
			A = binary.LittleEndian.Uint32(data[in.K:])
		case opAnd:
			A &= in.K
		case opRetK:
			return in.K
		case opJa:
			pc += int(in.K)
		case opJeq, opJgt, opJge:
			var c bool
			switch in.Code {
			case opJeq:
				c = A == in.K
			case opJgt:
				c = A > in.K
			case opJge:
				c = A >= in.K
			}
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			t.Fatalf("unexpected instruction %#x at %d", in.Code, pc)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func seccompData(auditArch, nr uint32, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], nr)
	binary.LittleEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// expect is the reference semantics, written straight from the spec and runc's rules
// without the compiler's tree: which action a syscall gets.
func expect(cfg *specs.LinuxSeccomp, a arch, nr uint32, args [6]uint64) uint32 {
	archs := map[arch]bool{archX86_64: true}
	for _, s := range cfg.Architectures {
		if v := archNames[s]; v != archForeign {
			archs[v] = true
		}
	}
	def, _ := actionValue(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if !archs[a] {
		if a == archX32 && nr == 0xffffffff {
			return def // libseccomp does not take -1 for an x32 call
		}
		return badArchAction
	}
	is32 := a != archX86_64
	if runcStub(cfg, a, nr) {
		return retErrno | 38
	}
	matches := func(sc specs.LinuxSyscall) bool {
		for _, n := range sc.Names {
			if m, ok := syscallNumber(n, a); ok && m == nr {
				return true
			}
		}
		return false
	}
	// An unconditional action overrides conditional rules; the first one stays.
	for _, sc := range cfg.Syscalls {
		if act, _ := actionValue(sc.Action, sc.ErrnoRet); act != def && len(sc.Args) == 0 && matches(sc) {
			return act
		}
	}
	var uncond *uint32
	for _, sc := range cfg.Syscalls {
		act, _ := actionValue(sc.Action, sc.ErrnoRet)
		if act == def {
			continue
		}
		if a == archX86 && (nr == 102 || nr == 117) {
			for _, n := range sc.Names {
				if m, ok := x86Multiplexed[n]; ok && m.mux == nr && uint64(m.call) == args[0]&0xffffffff {
					return act
				}
			}
		}
		match := false
		for _, n := range sc.Names {
			if m, ok := syscallNumber(n, a); ok && m == nr {
				match = true
			}
		}
		if !match {
			continue
		}
		if len(sc.Args) == 0 {
			if uncond == nil {
				uncond = &act
			}
			continue
		}
		if uncond != nil {
			continue
		}
		if argsHold(sc.Args, args, is32) {
			return act
		}
	}
	return def
}

// argsHold reports whether an entry's argument conditions hold for args: conditions on
// distinct arguments AND'd, or, when an index repeats, each condition a rule of its own (runc).
// On the 32-bit ABIs only the low words are compared.
func argsHold(conds []specs.LinuxSeccompArg, args [6]uint64, is32 bool) bool {
	holds := func(c specs.LinuxSeccompArg) bool {
		x, v, v2 := args[c.Index], c.Value, c.ValueTwo
		if is32 {
			x, v, v2 = uint64(uint32(x)), uint64(uint32(v)), uint64(uint32(v2))
		}
		switch c.Op {
		case specs.OpEqualTo:
			return x == v
		case specs.OpNotEqual:
			return x != v
		case specs.OpLessThan:
			return x < v
		case specs.OpLessEqual:
			return x <= v
		case specs.OpGreaterThan:
			return x > v
		case specs.OpGreaterEqual:
			return x >= v
		case specs.OpMaskedEqual:
			return x&v == v2&v // libseccomp takes the datum within the mask
		}
		panic(c.Op)
	}
	seen := map[uint]bool{}
	repeated := false
	for _, c := range conds {
		repeated = repeated || seen[c.Index]
		seen[c.Index] = true
	}
	ok := !repeated
	for _, c := range conds {
		if repeated && holds(c) {
			return true
		}
		ok = ok && holds(c)
	}
	return ok
}

// runcStub reports whether runc's -ENOSYS stub answers nr, following runc's generatePatch
// and findLastSyscalls.
func runcStub(cfg *specs.LinuxSeccomp, a arch, nr uint32) bool {
	if cfg.DefaultAction == specs.ActAllow || cfg.DefaultAction == specs.ActLog || cfg.DefaultAction == specs.ActTrace ||
		cfg.DefaultErrnoRet != nil && *cfg.DefaultErrnoRet == 38 {
		return false
	}
	var last uint32
	for _, sc := range cfg.Syscalls {
		for _, n := range sc.Names {
			if m, ok := syscallNumber(n, a); ok && m > last {
				last = m
			}
		}
	}
	return last != 0 && nr > last
}

var auditArch = map[arch]uint32{archX86_64: unix.AUDIT_ARCH_X86_64, archX86: unix.AUDIT_ARCH_I386, archX32: unix.AUDIT_ARCH_X86_64}

func u(v uint) *uint { return &v }

// argsProfile exercises every operator on 64-bit values, AND across arguments, OR for a
// repeated index, several rules for one syscall and an unconditional fallback.
func argsProfile() *specs.LinuxSeccomp {
	big := uint64(0x2_0000_0000)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(30), Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x1_0000_0000, Op: specs.OpGreaterEqual}, {Index: 2, Value: 7, Op: specs.OpEqualTo}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(31), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 8, Op: specs.OpEqualTo}, {Index: 1, Value: 0x1_0000_0005, Op: specs.OpLessEqual}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(32), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 9, Op: specs.OpEqualTo}, {Index: 1, Value: 0xf_0000_00f0, ValueTwo: 0x3_0000_0030, Op: specs.OpMaskedEqual}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(33), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 10, Op: specs.OpEqualTo}, {Index: 1, Value: big, Op: specs.OpNotEqual}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(34), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 11, Op: specs.OpEqualTo}, {Index: 1, Value: big, Op: specs.OpLessThan}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(35), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 12, Op: specs.OpEqualTo}, {Index: 1, Value: big, Op: specs.OpGreaterThan}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: u(36), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 5, Op: specs.OpLessThan}, {Index: 2, Value: 100, Op: specs.OpGreaterThan}}},
			{Names: []string{"umask", "getpgid"}, Action: specs.ActErrno, ErrnoRet: u(20), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0o10, Op: specs.OpLessThan}, {Index: 0, Value: 0o700, Op: specs.OpGreaterThan}}},
			{Names: []string{"getpgid"}, Action: specs.ActLog},
			{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"mkdir", "rmdir"}, Action: specs.ActTrace, ErrnoRet: u(77)},
			{Names: []string{"uname"}, Action: specs.ActKillProcess},
		},
	}
}

func TestCompileMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	interesting := []uint64{0, 1, 5, 7, 8, 9, 10, 11, 12, 13, 100, 101, 0xff, 0x30, 0xf0, 0xffffffff, 0x1_0000_0000, 0x1_0000_0005, 0x1_0000_0006,
		0x2_0000_0000, 0x1_ffff_ffff, 0x2_0000_0001, 0x3_0000_0030, 0x3_1234_5630, 0xffffffff_ffffffff}
	for name, cfg := range map[string]*specs.LinuxSeccomp{"docker": dockerProfile(), "args": argsProfile(),
		"x86_64 only": {DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}} {
		f, err := Compile(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d instructions", name, len(f.prog))
		nrs := []uint32{0, 1, 0x3fffffff, 0x40000000, 0xffffffff}
		for _, e := range syscallTable {
			for _, n := range []int32{e.x86_64, e.x86, e.x32} {
				if n >= 0 {
					nrs = append(nrs, uint32(n), uint32(n)+1, uint32(n)|x32SyscallBit)
				}
			}
		}
		checked := 0
		for _, a := range []arch{archX86_64, archX86, archX32} {
			for _, nr := range nrs {
				if a == archX86_64 && nr >= x32SyscallBit || a == archX32 && nr < x32SyscallBit {
					continue
				}
				for k := 0; k < 8; k++ {
					var args [6]uint64
					for i := range args {
						if rng.Intn(4) == 0 {
							args[i] = rng.Uint64()
						} else {
							args[i] = interesting[rng.Intn(len(interesting))]
						}
					}
					got := run(t, f.prog, seccompData(auditArch[a], nr, args))
					want := expect(cfg, a, nr, args)
					if got != want {
						t.Fatalf("%s: arch %v nr %#x args %#x: filter returns %#x, want %#x", name, a, nr, args, got, want)
					}
					checked++
				}
			}
		}
		for _, aa := range []uint32{unix.AUDIT_ARCH_AARCH64, 0, unix.AUDIT_ARCH_I386} {
			if aa == unix.AUDIT_ARCH_I386 && name != "x86_64 only" {
				continue
			}
			if got := run(t, f.prog, seccompData(aa, 0, [6]uint64{})); got != badArchAction {
				t.Fatalf("%s: arch %#x: got %#x, want the bad-arch kill", name, aa, got)
			}
		}
		t.Logf("%s: %d cases agree", name, checked)
	}
}

func TestLongJumps(t *testing.T) {
	// Hundreds of syscalls each with conditions: far more than 255 instructions between a
	// tree node and its right subtree, so the assembler must relay through BPF_JA.
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	for i, n := range dockerAllowed {
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActErrno, ErrnoRet: u(uint(i%200 + 1)),
			Args: []specs.LinuxSeccompArg{{Index: uint(i % 6), Value: uint64(i) << 20, Op: specs.OpGreaterEqual}}})
	}
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ja := 0
	for _, in := range f.prog {
		if in.Code == opJa {
			ja++
		}
	}
	t.Logf("%d instructions, %d long jumps", len(f.prog), ja)
	if ja == 0 {
		t.Fatal("expected long jumps")
	}
	rng := rand.New(rand.NewSource(2))
	for _, a := range []arch{archX86_64, archX86, archX32} {
		for _, n := range dockerAllowed {
			nr, ok := syscallNumber(n, a)
			if !ok {
				continue
			}
			for k := 0; k < 4; k++ {
				var args [6]uint64
				for i := range args {
					args[i] = rng.Uint64() >> uint(rng.Intn(64))
				}
				if got, want := run(t, f.prog, seccompData(auditArch[a], nr, args)), expect(cfg, a, nr, args); got != want {
					t.Fatalf("%v %s %#x: got %#x want %#x", a, n, args, got, want)
				}
			}
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  specs.LinuxSeccomp
		want string
	}{
		{specs.LinuxSeccomp{}, "linux.seccomp.defaultAction: is required"},
		{specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, `linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: u(3)}, "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno"},
		{specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE", DefaultErrnoRet: u(3)}, `linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActTrace, DefaultErrnoRet: u(1 << 16)}, "linux.seccomp.defaultErrnoRet: 65536 does not fit"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/x"}, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"}}, `linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}}, `linux.seccomp.flags[0]: unknown flag`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "m"}, "linux.seccomp.listenerMetadata: set without listenerPath"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno}, {Names: []string{"a"}, Action: specs.ActAllow}, {Names: []string{"b"}, Action: specs.ActAllow}, {Names: []string{"c"}, Action: "SCMP_ACT_MAYBE"}}},
			`linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_MAYBE"`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKillProcess, ErrnoRet: u(5)}}}, "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL_PROCESS takes no errno"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: u(70000)}}}, "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Action: specs.ActAllow}}}, "linux.seccomp.syscalls[0].names: at least one"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActAllow}}}, "linux.seccomp.syscalls[0].names[1]: empty"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "linux.seccomp.syscalls[0].args[0].index: 6 is out of range"},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_LIKE"}}}}}, `linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"`},
		{specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"},
	} {
		err := Validate(&c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	for _, ok := range []*specs.LinuxSeccomp{nil, dockerProfile(), argsProfile(),
		// Same syscall twice with the same action, a rule equal to the default, foreign arches.
		{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchAARCH64, specs.ArchS390X}, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow}, {Names: []string{"read"}, Action: specs.ActAllow}, {Names: []string{"read"}, Action: specs.ActErrno}}},
	} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate: %v", err)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}}
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW); f.Flags() != want || f.Notify() {
		t.Errorf("flags %#x notify %v, want %#x (WAIT_KILLABLE_RECV needs a listener)", f.Flags(), f.Notify(), want)
	}
	cfg.ListenerPath = "/run/agent.sock"
	cfg.Syscalls = []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}
	if f, err = Compile(cfg); err != nil {
		t.Fatal(err)
	}
	if want := uint(0x3f); f.Flags() != want || !f.Notify() {
		t.Errorf("flags %#x notify %v, want %#x (NEW_LISTENER and TSYNC_ESRCH added)", f.Flags(), f.Notify(), want)
	}
}

func TestSyscallNumbers(t *testing.T) {
	for _, c := range []struct {
		name string
		a    arch
		nr   int64
	}{
		{"read", archX86_64, 0}, {"mkdir", archX86_64, 83}, {"openat2", archX86_64, 437}, {"clone3", archX86_64, 435},
		{"read", archX86, 3}, {"socketcall", archX86, 102}, {"socket", archX86, 359}, {"_llseek", archX86, 140},
		{"read", archX32, 0x40000000}, {"rt_sigaction", archX32, 0x40000000 + 512}, {"execveat", archX32, 0x40000000 + 545},
		{"cachestat", archX32, 0x40000000 + 451},
		{"_llseek", archX86_64, -1}, {"socketcall", archX86_64, -1}, {"uselib", archX32, -1}, {"nope", archX86_64, -1},
	} {
		nr, ok := syscallNumber(c.name, c.a)
		if got := int64(nr); !ok {
			got = -1
			if got != c.nr {
				t.Errorf("%s on %v: missing, want %d", c.name, c.a, c.nr)
			}
		} else if got != c.nr {
			t.Errorf("%s on %v: %d, want %d", c.name, c.a, got, c.nr)
		}
	}
	for i := 1; i < len(syscallTable); i++ {
		if syscallTable[i-1].name >= syscallTable[i].name {
			t.Fatalf("table not sorted at %s", syscallTable[i].name)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	cfg := dockerProfile()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		f, err := Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		n = len(f.prog)
	}
	b.ReportMetric(float64(n), "insns")
}

// BenchmarkFilterRun measures the instructions the docker profile executes per syscall,
// averaged over the syscalls it allows on x86_64 (the kernel's cost is proportional).
func BenchmarkFilterRun(b *testing.B) {
	f, err := Compile(dockerProfile())
	if err != nil {
		b.Fatal(err)
	}
	var datas [][]byte
	for _, n := range dockerAllowed {
		if nr, ok := syscallNumber(n, archX86_64); ok {
			datas = append(datas, seccompData(unix.AUDIT_ARCH_X86_64, nr, [6]uint64{}))
		}
	}
	steps := 0
	for _, d := range datas {
		steps += countSteps(f.prog, d)
	}
	for b.Loop() {
		countSteps(f.prog, datas[0])
	}
	b.ReportMetric(float64(steps)/float64(len(datas)), "insns/syscall")
}

func countSteps(prog []unix.SockFilter, data []byte) int {
	var A uint32
	steps := 0
	for pc := 0; pc < len(prog); pc++ {
		steps++
		in := prog[pc]
		switch in.Code {
		case opLdW:
			A = binary.LittleEndian.Uint32(data[in.K:])
		case opAnd:
			A &= in.K
		case opRetK:
			return steps
		case opJa:
			pc += int(in.K)
		default:
			c := in.Code == opJeq && A == in.K || in.Code == opJgt && A > in.K || in.Code == opJge && A >= in.K
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
	}
	return steps
}

// TestPrecedence pins the rules libseccomp 2.5 (so runc) applies when several entries name
// one syscall, checked against libseccomp's own output while choosing this compiler.
func TestPrecedence(t *testing.T) {
	cond := specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActErrno, ErrnoRet: u(20), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpLessThan}}}
	log := specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActLog}
	trap := specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActTrap}
	allow := specs.LinuxSyscall{Names: []string{"getpgid"}, Action: specs.ActAllow}
	for _, c := range []struct {
		name  string
		rules []specs.LinuxSyscall
		want  uint32
	}{
		{"unconditional overrides conditional", []specs.LinuxSyscall{cond, log}, retLog},
		{"in either order", []specs.LinuxSyscall{log, cond}, retLog},
		{"the first unconditional stays", []specs.LinuxSyscall{trap, log}, retTrap},
		{"a rule equal to the default is skipped", []specs.LinuxSyscall{allow, cond}, retErrno | 20},
	} {
		f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: c.rules})
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, f.prog, seccompData(unix.AUDIT_ARCH_X86_64, unix.SYS_GETPGID, [6]uint64{})); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
}
