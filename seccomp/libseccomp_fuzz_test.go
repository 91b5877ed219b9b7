//go:build libseccomp

package seccomp

import (
	"errors"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// FuzzLibseccomp is the differential test of libseccomp_test.go on fuzzed profiles: where both
// berth and libseccomp (driven as runc drives it, with runc's -ENOSYS stub in front) accept a
// profile, each syscall number the profile names, its neighbours and the ends of the range get
// the same decision on every architecture. Run with
//
//	CGO_ENABLED=1 go test -tags libseccomp -run XXX -fuzz FuzzLibseccomp ./seccomp
func FuzzLibseccomp(f *testing.F) {
	profileSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ok := fuzzProfile(data)
		if !ok {
			return
		}
		ours, err := Compile(cfg)
		if err != nil || ours == nil {
			return
		}
		theirs, err := runcCompileErr(cfg)
		if err != nil {
			return
		}
		archs := map[arch]bool{archX86_64: true}
		for _, x := range cfg.Architectures {
			archs[archNames[x]] = true
		}
		// Syscalls newer than the libseccomp linked are unknown to it: it drops their rules,
		// and runc's stub does not count them.
		skip := map[uint32]bool{}
		nrs := map[uint32]bool{0: true, 0x3fffffff: true, 102: true, 117: true, 0x40000000: true, 0xffffffff: true}
		// A libseccomp defect berth does not copy either: several conditional rules on one
		// syscall with range comparisons of one argument are merged lossily in its tree
		// (getpeername with arg2 <= 2^32 OR arg2 < 48 lets arg2 = 255 through).
		ranged := map[string]int{}
		for _, sc := range cfg.Syscalls {
			for _, a := range sc.Args {
				switch a.Op {
				case specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual:
					for _, n := range sc.Names {
						ranged[n+"/"+strconv.Itoa(int(a.Index))]++
					}
				}
			}
		}
		for _, c := range ranged {
			if c > 1 {
				return
			}
		}
		x32, _ := libseccomp.GetArchFromString("x32")
		for _, sc := range cfg.Syscalls {
			for _, n := range sc.Names {
				// A libseccomp quirk berth does not copy: with x32 in the filter, a
				// conditional rule on a syscall x32 lacks (get_kernel_syms, tuxcall, the
				// other obsolete ones) is dropped on x86_64 too.
				if nr, err := libseccomp.GetSyscallFromNameByArch(n, x32); archs[archX32] && len(sc.Args) > 0 && (err != nil || nr < 0) {
					return
				}
				// Newer than the libseccomp linked: unknown, or a negative pseudo number.
				lnr, lerr := libseccomp.GetSyscallFromName(n)
				if lerr == nil && lnr < 0 && !(archs[archX86] && x86Multiplexed[n].mux != 0) {
					lerr = errors.New("not a syscall to libseccomp")
				}
				for _, a := range []arch{archX86_64, archX86, archX32} {
					if nr, ok := syscallNumber(n, a); ok {
						if lerr != nil {
							return // the stub's last number would differ
						}
						nrs[nr], nrs[nr+1], nrs[nr|x32SyscallBit] = true, true, true
						if nr > 0 {
							nrs[nr-1] = true
						}
					}
				}
			}
		}
		r := &byteReader{data}
		auditArchs := []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386}
		if !archs[archForeign] {
			// With a foreign architecture listed, libseccomp filters its numbers too; berth
			// leaves them out on purpose (an x86 kernel runs no such process).
			auditArchs = append(auditArchs, unix.AUDIT_ARCH_AARCH64)
		}
		for _, aa := range auditArchs {
			for nr := range nrs {
				if skip[nr] {
					continue
				}
				for k := 0; k < 3; k++ {
					args := fuzzArgs(r, aa == unix.AUDIT_ARCH_I386 && k == 0, nr)
					d := seccompData(aa, nr, args)
					want := runFull(t, theirs, d)
					if ar, ok := map[uint32]arch{unix.AUDIT_ARCH_I386: archX86, unix.AUDIT_ARCH_X86_64: archX86_64}[aa]; ok {
						if ar == archX86_64 && nr >= x32SyscallBit {
							ar = archX32
						}
						if archs[ar] && overlap(cfg, ar, nr, args) {
							continue
						}
						if archs[ar] && runcStub(cfg, ar, nr) {
							want = retErrno | 38
						}
					}
					if got := run(t, ours.prog, d); got != want {
						t.Fatalf("arch %#x nr %#x args %#x: libseccomp (runc) %#x, berth %#x", aa, nr, args, want, got)
					}
				}
			}
		}
	})
}

// overlap reports the one case where berth knowingly differs from libseccomp (doc.go): two
// conditional rules with different actions both hold for the call. berth takes the first in
// profile order; libseccomp's tree tries the rule on the highest argument first.
func overlap(cfg *specs.LinuxSeccomp, a arch, nr uint32, args [6]uint64) bool {
	def, _ := actionValue(cfg.DefaultAction, cfg.DefaultErrnoRet)
	var first *uint32
	for _, sc := range cfg.Syscalls {
		act, _ := actionValue(sc.Action, sc.ErrnoRet)
		if act == def || len(sc.Args) == 0 {
			continue
		}
		named := false
		for _, n := range sc.Names {
			if m, ok := syscallNumber(n, a); ok && m == nr {
				named = true
			}
		}
		if !named || !argsHold(sc.Args, args, a != archX86_64) {
			continue
		}
		if first != nil && *first != act {
			return true
		}
		first = &act
	}
	return false
}
