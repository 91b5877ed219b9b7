package cgroups

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// ciliumDeviceFilter is deviceFilter written with cilium/ebpf's assembler, which berth used
// before ebpf.go: the oracle for the encoding.
func ciliumDeviceFilter(rules []deviceRule) asm.Instructions {
	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
		asm.Mov.Reg(asm.R6, asm.R3),
	}
	label := func(i int) string { return "rule-" + strconv.Itoa(i) }
	deny := label(len(rules))
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
			block = append(block, asm.And.Imm(asm.R6, ^r.access&accAll), asm.JEq.Imm(asm.R6, 0, "allow"))
		} else {
			block = append(block, asm.Mov.Reg(asm.R1, asm.R6), asm.And.Imm(asm.R1, r.access), asm.JNE.Imm(asm.R1, 0, deny))
		}
		block[0] = block[0].WithSymbol(label(n))
		insts = append(insts, block...)
	}
	insts = append(insts, asm.Mov.Imm(asm.R0, 0).WithSymbol(deny), asm.Return())
	if allows {
		insts = append(insts, asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"), asm.Return())
	}
	return insts
}

// ebpf.go's assembler encodes the device program byte for byte as cilium/ebpf's does, for
// rule lists of every shape (wildcards, allow and deny, types, numbers up to 2^31-1).
func TestDeviceFilterEncoding(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for k := 0; k < 2000; k++ {
		var rules []deviceRule
		for n := rng.Intn(12); n > 0; n-- {
			r := deviceRule{allow: rng.Intn(2) == 0, typ: []int32{0, devBlock, devChar}[rng.Intn(3)], major: -1, minor: -1,
				access: int32(rng.Intn(7) + 1)}
			if r.typ != 0 && rng.Intn(3) > 0 {
				r.major = []int64{0, 1, 5, 136, 1<<31 - 1}[rng.Intn(5)]
			}
			if r.typ != 0 && rng.Intn(3) > 0 {
				r.minor = []int64{0, 3, 255, 1<<31 - 1}[rng.Intn(4)]
			}
			rules = append(rules, r)
		}
		got, err := deviceFilter(rules).assemble()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := ciliumDeviceFilter(rules).Marshal(&want, binary.LittleEndian); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("rules %+v:\n got %x\nwant %x", rules, got, want.Bytes())
		}
	}
}

func TestAssembleUndefinedLabel(t *testing.T) {
	p := newAsm()
	p.jump(jmpImm(0x10, r1, 0), "nowhere")
	if _, err := p.assemble(); err == nil {
		t.Fatal("a jump to an undefined label assembled")
	}
}

// A program the kernel refuses comes back with the verifier's reason.
func TestLoadProgramVerifierLog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	p := newAsm()
	p.add(mov64Reg(r0, 7), exit()) // R7 is never written
	code, err := p.assemble()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := loadProgram(unix.BPF_PROG_TYPE_CGROUP_DEVICE, "berth_test", code, devLicense)
	if err == nil {
		unix.Close(fd)
		t.Fatal("the kernel loaded a program reading an unset register")
	}
	if !strings.Contains(err.Error(), "verifier: ") || !strings.Contains(err.Error(), "R7") {
		t.Fatalf("error without the verifier's reason: %v", err)
	}
	t.Log(err)
}
