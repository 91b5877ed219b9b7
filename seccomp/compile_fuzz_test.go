package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var (
	fuzzActions = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActKillThread, specs.ActKill,
		specs.ActTrap, specs.ActTrace, specs.ActLog, specs.ActNotify, "SCMP_ACT_BOGUS"}
	fuzzOps = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan,
		specs.OpGreaterEqual, specs.OpMaskedEqual, "SCMP_CMP_BOGUS"}
	fuzzArchs  = []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchX86_64, specs.ArchAARCH64, "SCMP_ARCH_BOGUS"}
	fuzzValues = []uint64{0, 1, 2, 5, 7, 8, 0xff, 0x30, 0xffffffff, 0x1_0000_0000, 0x1_0000_0005, 0x2_0000_0000, 0x3_0000_0030, 0xffffffff_ffffffff}
)

// byteReader hands out the fuzzer's bytes as choices; zeros once they run out.
type byteReader struct{ b []byte }

func (r *byteReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) u64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

// fuzzProfile reads a profile from the fuzzer's bytes: as JSON when they start with "{" (the
// seeds are real profiles), otherwise as choices (actions, names from the syscall table,
// arguments, operators, values, errnos), which mutations keep well formed.
func fuzzProfile(data []byte) (*specs.LinuxSeccomp, bool) {
	if len(data) > 0 && data[0] == '{' {
		var cfg specs.LinuxSeccomp
		if json.Unmarshal(data, &cfg) != nil {
			return nil, false
		}
		return &cfg, true
	}
	r := &byteReader{data}
	errno := func() *uint {
		switch c := r.byte(); c % 4 {
		case 0:
			return nil
		case 1:
			return u(uint(c))
		case 2:
			return u(uint(r.u64() % 70000))
		}
		return u(38)
	}
	cfg := &specs.LinuxSeccomp{DefaultAction: fuzzActions[int(r.byte())%len(fuzzActions)], DefaultErrnoRet: errno()}
	for n := r.byte() % 4; n > 0; n-- {
		cfg.Architectures = append(cfg.Architectures, fuzzArchs[int(r.byte())%len(fuzzArchs)])
	}
	for n := int(r.byte() % 12); n > 0 && len(r.b) > 0; n-- {
		sc := specs.LinuxSyscall{Action: fuzzActions[int(r.byte())%len(fuzzActions)], ErrnoRet: errno()}
		for k := r.byte()%3 + 1; k > 0; k-- {
			c := r.byte()
			if c == 255 {
				sc.Names = append(sc.Names, "no_such_syscall")
				continue
			}
			// Near the syscalls numbered alike on the architectures, and the socketcall ones.
			i := (int(c)*len(syscallTable)/255 + int(r.byte()%4)) % len(syscallTable)
			sc.Names = append(sc.Names, syscallTable[i].name)
		}
		for k := r.byte() % 4; k > 0; k-- {
			a := specs.LinuxSeccompArg{Index: uint(r.byte() % 7), Op: fuzzOps[int(r.byte())%len(fuzzOps)]}
			if c := r.byte(); c < 200 {
				a.Value = fuzzValues[int(c)%len(fuzzValues)]
				a.ValueTwo = fuzzValues[int(r.byte())%len(fuzzValues)]
			} else {
				a.Value, a.ValueTwo = r.u64(), r.u64()
			}
			sc.Args = append(sc.Args, a)
		}
		cfg.Syscalls = append(cfg.Syscalls, sc)
	}
	if r.byte()%8 == 1 {
		cfg.ListenerPath = "/run/agent.sock"
	}
	return cfg, true
}

func profileSeeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/profiles/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, cfg := range []*specs.LinuxSeccomp{dockerProfile(), argsProfile()} {
		data, _ := json.Marshal(cfg)
		f.Add(data)
	}
	f.Add([]byte{1, 0, 2, 0, 1, 3, 1, 2, 40, 0, 100, 0, 1, 3, 0, 3, 0, 4})
	f.Add([]byte{2, 1, 1, 1, 5, 7, 2, 2, 9, 0, 30, 1, 2, 1, 5, 3, 3, 5, 0, 5, 4, 0, 1, 9, 1, 2, 1, 2, 250, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8})
}

// FuzzCompile: on any profile, Validate and Compile agree, errors are one line and name a
// field under linux.seccomp, and a compiled filter gives each syscall number, on each
// architecture, the action the reference semantics (expect, from the spec and runc's rules)
// give it.
func FuzzCompile(f *testing.F) {
	profileSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ok := fuzzProfile(data)
		if !ok {
			return
		}
		verr := Validate(cfg)
		filter, err := Compile(cfg)
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate: %v; Compile: %v", verr, err)
		}
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "linux.seccomp") {
				t.Fatalf("error %q: not one line naming a field of linux.seccomp", msg)
			}
			return
		}
		if filter == nil {
			t.Fatal("no filter for a profile")
		}
		checkDecisions(t, cfg, filter.prog, data)
	})
}

// checkDecisions runs the filter on the numbers the profile names (and their neighbours, x32
// forms, and the ends of the range) on each architecture, with arguments from the input.
func checkDecisions(t *testing.T, cfg *specs.LinuxSeccomp, prog []unix.SockFilter, data []byte) {
	nrs := map[uint32]bool{0: true, 0x3fffffff: true, 0x40000000: true, 0xffffffff: true, 102: true, 117: true}
	for _, sc := range cfg.Syscalls {
		for _, n := range sc.Names {
			for _, a := range []arch{archX86_64, archX86, archX32} {
				if nr, ok := syscallNumber(n, a); ok {
					nrs[nr], nrs[nr+1], nrs[nr|x32SyscallBit] = true, true, true
					if nr > 0 {
						nrs[nr-1] = true
					}
				}
			}
		}
	}
	r := &byteReader{data}
	for _, a := range []arch{archX86_64, archX86, archX32} {
		for nr := range nrs {
			if a == archX86_64 && nr >= x32SyscallBit || a == archX32 && nr < x32SyscallBit {
				continue
			}
			for k := 0; k < 3; k++ {
				args := fuzzArgs(r, a == archX86 && k == 0, nr)
				got := run(t, prog, seccompData(auditArch[a], nr, args))
				if want := expect(cfg, a, nr, args); got != want {
					t.Fatalf("arch %v nr %#x args %#x: filter returns %#x, want %#x", a, nr, args, got, want)
				}
			}
		}
	}
	for _, aa := range []uint32{unix.AUDIT_ARCH_AARCH64, 0} {
		if got := run(t, prog, seccompData(aa, 0, [6]uint64{})); got != badArchAction {
			t.Fatalf("arch %#x: got %#x, want the bad-arch kill", aa, got)
		}
	}
}

// fuzzArgs draws a syscall's six arguments from the fuzzer's bytes, mostly from fuzzValues
// (the edges a comparison can sit on); with x86Multiplexer, an x86 socketcall (102) or ipc
// (117) gets a call number in range first, so that the per-call rules are reached.
func fuzzArgs(r *byteReader, x86Multiplexer bool, nr uint32) [6]uint64 {
	var args [6]uint64
	for i := range args {
		if c := r.byte(); c < 200 {
			args[i] = fuzzValues[int(c)%len(fuzzValues)]
		} else {
			args[i] = r.u64()
		}
	}
	if x86Multiplexer && (nr == 102 || nr == 117) {
		args[0] = uint64(r.byte() % 21)
	}
	return args
}
