//go:build libseccomp

// Differential test and benchmark against libseccomp, driven the way runc drives it. Not part
// of the normal build (berth does not link libseccomp): run with
//
//	apt-get install libseccomp-dev
//	CGO_ENABLED=1 go test -tags libseccomp -run Libseccomp -bench Libseccomp ./seccomp

package seccomp

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func lscAction(a specs.LinuxSeccompAction, e *uint) libseccomp.ScmpAction {
	ret := int16(unix.EPERM)
	if e != nil {
		ret = int16(*e)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess
	case specs.ActTrap:
		return libseccomp.ActTrap
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(ret)
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(ret)
	case specs.ActAllow:
		return libseccomp.ActAllow
	case specs.ActLog:
		return libseccomp.ActLog
	case specs.ActNotify:
		return libseccomp.ActNotify
	}
	panic(a)
}

var lscOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess, specs.OpLessEqual: libseccomp.CompareLessOrEqual,
	specs.OpEqualTo: libseccomp.CompareEqual, specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
	specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
}

// runcCompile follows runc's libcontainer/seccomp/seccomp_linux.go.
func runcCompile(t testing.TB, cfg *specs.LinuxSeccomp) []unix.SockFilter {
	prog, err := runcCompileErr(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// runcCompileErr is runcCompile reporting libseccomp's refusals (for fuzzed profiles).
func runcCompileErr(cfg *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	def := lscAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	f.SetNoNewPrivsBit(false)
	for _, a := range cfg.Architectures {
		sa, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
		if err != nil {
			return nil, err
		}
		if err := f.AddArch(sa); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.Syscalls {
		act := lscAction(c.Action, c.ErrnoRet)
		if act == def {
			continue
		}
		for _, name := range c.Names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue
			}
			if len(c.Args) == 0 {
				if err := f.AddRule(nr, act); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				continue
			}
			var conds []libseccomp.ScmpCondition
			counts := map[uint]int{}
			multi := false
			for _, x := range c.Args {
				cond, err := libseccomp.MakeCondition(x.Index, lscOps[x.Op], x.Value, x.ValueTwo)
				if err != nil {
					return nil, err
				}
				counts[x.Index]++
				multi = multi || counts[x.Index] > 1
				conds = append(conds, cond)
			}
			if multi {
				for _, cond := range conds {
					if err := f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{cond}); err != nil {
						return nil, err
					}
				}
			} else if err := f.AddRuleConditional(nr, act, conds); err != nil {
				return nil, err
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	done := make(chan []byte)
	go func() {
		var b []byte
		buf := make([]byte, 1<<16)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		done <- b
	}()
	if err := f.ExportBPF(w); err != nil {
		w.Close()
		<-done
		return nil, err
	}
	w.Close()
	b := <-done
	prog := make([]unix.SockFilter, 0, len(b)/8)
	for i := 0; i+8 <= len(b); i += 8 {
		prog = append(prog, unix.SockFilter{Code: binary.LittleEndian.Uint16(b[i:]), Jt: b[i+2], Jf: b[i+3], K: binary.LittleEndian.Uint32(b[i+4:])})
	}
	return prog, nil
}

// runFull interprets the classic BPF libseccomp emits, a few more opcodes than ours.
func runFull(t *testing.T, prog []unix.SockFilter, data []byte) uint32 {
	var A, X uint32
	var mem [16]uint32
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
		case unix.BPF_ST:
			mem[in.K] = A
		case unix.BPF_LD | unix.BPF_MEM:
			A = mem[in.K]
		case unix.BPF_MISC | unix.BPF_TAX:
			X = A
		case unix.BPF_MISC | unix.BPF_TXA:
			A = X
		case opJeq, opJgt, opJge, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			c := in.Code == opJeq && A == in.K || in.Code == opJgt && A > in.K || in.Code == opJge && A >= in.K ||
				in.Code&0xf0 == unix.BPF_JSET && A&in.K != 0
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		default:
			t.Fatalf("opcode %#x", in.Code)
		}
	}
	t.Fatal("ran off the end")
	return 0
}

func TestLibseccompSameDecisions(t *testing.T) {
	socketProfile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(13), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 2, Op: specs.OpEqualTo}}},
			{Names: []string{"connect", "shmget"}, Action: specs.ActErrno, ErrnoRet: u(14)},
		}}
	boundary := []uint64{0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 23, 40, 100, 101, 0o700, 0o701, 131072, 131080, 0xffffffff, 2114060288,
		0x1_0000_0000, 0x1_0000_0005, 0x1_0000_0006, 0x300000030, 0x37777773f, 0x200000000, 0x200000001, 0x1ffffffff}
	for name, cfg := range map[string]*specs.LinuxSeccomp{"docker": dockerProfile(), "args": argsProfile(), "socket": socketProfile} {
		ours, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		theirs := runcCompile(t, cfg)
		archs := map[arch]bool{archX86_64: true}
		for _, x := range cfg.Architectures {
			archs[archNames[x]] = true
		}
		// Syscalls newer than the libseccomp linked are unknown to it: it drops their rules.
		skip := map[uint32]bool{}
		for _, sc := range cfg.Syscalls {
			for _, n := range sc.Names {
				if _, err := libseccomp.GetSyscallFromName(n); err != nil {
					for _, a := range []arch{archX86_64, archX86, archX32} {
						if nr, ok := syscallNumber(n, a); ok {
							skip[nr] = true
							t.Logf("%s: libseccomp does not know %s (%v %d)", name, n, a, nr)
						}
					}
				}
			}
		}
		rng := rand.New(rand.NewSource(4))
		n := 0
		for _, aa := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64} {
			for _, base := range []uint32{0, x32SyscallBit} {
				for nr := uint32(0); nr < 1100; nr++ {
					if skip[base|nr] {
						continue
					}
					for k := 0; k < 8; k++ {
						var args [6]uint64
						for i := range args {
							if rng.Intn(3) == 0 {
								args[i] = rng.Uint64()
							} else {
								args[i] = boundary[rng.Intn(len(boundary))]
							}
						}
						d := seccompData(aa, base|nr, args)
						a := runFull(t, theirs, d)
						// runc puts its -ENOSYS stub in front of libseccomp's program.
						if ar, ok := map[uint32]arch{unix.AUDIT_ARCH_I386: archX86, unix.AUDIT_ARCH_X86_64: archX86_64}[aa]; ok {
							if ar == archX86_64 && base != 0 {
								ar = archX32
							}
							if archs[ar] && runcStub(cfg, ar, base|nr) {
								a = retErrno | 38
							}
						}
						if b := run(t, ours.prog, d); a != b {
							t.Errorf("%s: arch %#x nr %#x args %#x: libseccomp %#x, berth %#x", name, aa, base|nr, args, a, b)
						}
						n++
					}
				}
			}
		}
		t.Logf("%s: %d cases; %d instructions against libseccomp's %d", name, n, len(ours.prog), len(theirs))
	}
}

func BenchmarkCompileLibseccomp(b *testing.B) {
	cfg := dockerProfile()
	for b.Loop() {
		runcCompile(b, cfg)
	}
}
