package cgroups

import (
	"bytes"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few eBPF instructions and bpf(2) commands the device program needs (devices_ebpf.go),
// written against the kernel's ABI (include/uapi/linux/bpf.h) with golang.org/x/sys/unix's
// constants. berth used github.com/cilium/ebpf for this; its package initialisers (and those
// of what it links: go/format, encoding/xml, compress/gzip, BTF) ran on every start of every
// berth process, cgroup v1 hosts included: 0.26 ms of CPU and 45 page faults a container,
// measured. The program is a dozen instruction kinds and five commands; the tests check the
// encoding against cilium/ebpf's assembler and load and attach the program to a real group.

// insn is struct bpf_insn: opcode, dst_reg (low nibble) and src_reg (high nibble), offset,
// immediate.
type insn struct {
	code uint8
	regs uint8
	off  int16
	imm  int32
}

// Registers: R0 is the return value, R1 the context (struct bpf_cgroup_dev_ctx *).
const (
	r0 uint8 = iota
	r1
	r2
	r3
	r4
	r5
	r6
)

func ldxW(dst, src uint8, off int16) insn { // dst = *(u32 *)(src + off)
	return insn{code: unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W, regs: dst | src<<4, off: off}
}

func alu32Imm(op uint8, dst uint8, imm int32) insn { // 32-bit dst op= imm
	return insn{code: unix.BPF_ALU | op | unix.BPF_K, regs: dst, imm: imm}
}

func alu64Imm(op uint8, dst uint8, imm int32) insn { // 64-bit dst op= imm
	return insn{code: unix.BPF_ALU64 | op | unix.BPF_K, regs: dst, imm: imm}
}

func mov64Reg(dst, src uint8) insn { // dst = src
	return insn{code: unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_X, regs: dst | src<<4}
}

// jmpImm is "if dst op imm goto label" (64-bit compare); the label is resolved by assemble.
func jmpImm(op uint8, dst uint8, imm int32) insn {
	return insn{code: unix.BPF_JMP | op | unix.BPF_K, regs: dst, imm: imm}
}

func exit() insn { return insn{code: unix.BPF_JMP | unix.BPF_EXIT} }

// asmProg is a program being written: instructions, labels and the jumps still to resolve.
type asmProg struct {
	insns  []insn
	labels map[string]int
	jumps  map[int]string // instruction index → label
}

func newAsm() *asmProg {
	return &asmProg{labels: map[string]int{}, jumps: map[int]string{}}
}

// label names the next instruction.
func (p *asmProg) label(name string) { p.labels[name] = len(p.insns) }

func (p *asmProg) add(in ...insn) { p.insns = append(p.insns, in...) }

// jump adds a conditional jump to label.
func (p *asmProg) jump(in insn, label string) {
	p.jumps[len(p.insns)] = label
	p.insns = append(p.insns, in)
}

// assemble resolves the jumps (offsets count from the next instruction) and returns the
// program's bytes (little-endian, as the hosts berth runs on).
func (p *asmProg) assemble() ([]byte, error) {
	for i, l := range p.jumps {
		t, ok := p.labels[l]
		if !ok {
			return nil, fmt.Errorf("eBPF program: jump to undefined label %q", l)
		}
		off := t - i - 1
		if off < 0 || off > 1<<15-1 {
			return nil, fmt.Errorf("eBPF program: jump to %q out of range (%d)", l, off)
		}
		p.insns[i].off = int16(off)
	}
	b := make([]byte, 0, 8*len(p.insns))
	for _, in := range p.insns {
		b = append(b, in.code, in.regs, byte(in.off), byte(uint16(in.off)>>8),
			byte(in.imm), byte(in.imm>>8), byte(in.imm>>16), byte(in.imm>>24))
	}
	return b, nil
}

// bpf is the bpf(2) system call on attr, retried while interrupted (EINTR) and while the
// verifier asks to be called again (EAGAIN, as cilium/ebpf does).
func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	for try := 0; ; try++ {
		r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
		if errno == 0 {
			return int(r), nil
		}
		if (errno == unix.EINTR || errno == unix.EAGAIN) && try < 10 {
			continue
		}
		return -1, errno
	}
}

// progLoadAttr is bpf_attr's BPF_PROG_LOAD part, up to the fields set here.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

// loadProgram loads a program of type typ and returns its fd. When the kernel refuses it, the
// load is made again with the verifier's log, whose reason goes into the error.
func loadProgram(typ uint32, name string, code []byte, license string) (int, error) {
	lic := append([]byte(license), 0)
	log := make([]byte, 0, 64<<10)
	defer runtime.KeepAlive(code)
	defer runtime.KeepAlive(lic)
	defer runtime.KeepAlive(log)
	attr := progLoadAttr{
		progType: typ,
		insnCnt:  uint32(len(code) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&lic[0]))),
	}
	copy(attr.progName[:len(attr.progName)-1], name)
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		return fd, nil
	}
	log = log[:cap(log)]
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	if fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err == nil {
		return fd, nil // loaded the second time: take it
	}
	if end := bytes.IndexByte(log, 0); end >= 0 {
		log = log[:end]
	}
	// The reason is the last line before the closing statistics ("processed N insns ...").
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); len(l) > 0 && !bytes.HasPrefix(l, []byte("processed ")) {
			return -1, fmt.Errorf("%w (verifier: %s)", err, l)
		}
	}
	return -1, err
}

// queryPrograms lists the ids of the programs attached to the group fd for attachType.
func queryPrograms(fd int, attachType uint32) ([]uint32, error) {
	ids := make([]uint32, 64) // BPF_CGROUP_MAX_PROGS
	attr := struct {
		targetFd    uint32
		attachType  uint32
		queryFlags  uint32
		attachFlags uint32
		progIDs     uint64
		progCnt     uint32
		_           uint32
	}{targetFd: uint32(fd), attachType: attachType, progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:min(int(attr.progCnt), len(ids))], nil
}

// attachAttr is bpf_attr's BPF_PROG_ATTACH and BPF_PROG_DETACH part.
type attachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

func attachProgram(target, prog int, attachType, flags uint32) error {
	attr := attachAttr{targetFd: uint32(target), attachBpfFd: uint32(prog), attachType: attachType, attachFlags: flags}
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

func detachProgram(target, prog int, attachType uint32) error {
	attr := attachAttr{targetFd: uint32(target), attachBpfFd: uint32(prog), attachType: attachType}
	_, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// programFd opens the loaded program with the given id (BPF_PROG_GET_FD_BY_ID).
func programFd(id uint32) (int, error) {
	attr := struct{ id, nextID, openFlags uint32 }{id: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, fmt.Errorf("program %d: %w", id, err)
	}
	return fd, nil
}
