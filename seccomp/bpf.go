package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A small classic-BPF assembler with symbolic, forward-only jump targets.
//
// Conditional jumps in classic BPF reach at most 255 instructions ahead; BPF_JA reaches 2^32.
// assemble lays the program out, and any conditional jump with a target out of reach becomes
// "jcc k, 0, 1; ja T; ja F", repeated until no jump is out of reach (expansion only grows
// distances, so this terminates).

const (
	opLdW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJa   = unix.BPF_JMP | unix.BPF_JA
	opRetK = unix.BPF_RET | unix.BPF_K

	next = -1 // jump target: the following instruction
)

type ainsn struct {
	code   uint16
	k      uint32
	jt, jf int // label ids or next; for opJa, jt is the target
}

type asm struct {
	ins    []ainsn
	labels []int // label id → index in ins
}

func (a *asm) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *asm) mark(l int) { a.labels[l] = len(a.ins) }

func (a *asm) ld(off uint32) { a.ins = append(a.ins, ainsn{code: opLdW, k: off}) }
func (a *asm) and(k uint32)  { a.ins = append(a.ins, ainsn{code: opAnd, k: k}) }
func (a *asm) ret(k uint32)  { a.ins = append(a.ins, ainsn{code: opRetK, k: k}) }
func (a *asm) ja(l int)      { a.ins = append(a.ins, ainsn{code: opJa, jt: l}) }
func (a *asm) jmp(op uint16, k uint32, jt, jf int) {
	a.ins = append(a.ins, ainsn{code: op, k: k, jt: jt, jf: jf})
}

func isCond(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code != opJa
}

func (a *asm) assemble() ([]unix.SockFilter, error) {
	n := len(a.ins)
	expanded := make([]bool, n)
	pos := make([]int, n+1)
	target := func(i, l int) int { // instruction index a jump from i lands on
		if l == next {
			return i + 1
		}
		return a.labels[l]
	}
	for {
		p := 0
		for i := range a.ins {
			pos[i] = p
			if expanded[i] {
				p += 3
			} else {
				p++
			}
		}
		pos[n] = p
		changed := false
		for i, in := range a.ins {
			if !isCond(in.code) || expanded[i] {
				continue
			}
			if pos[target(i, in.jt)]-pos[i]-1 > 255 || pos[target(i, in.jf)]-pos[i]-1 > 255 {
				expanded[i], changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	if pos[n] > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("the filter needs %d BPF instructions, more than the kernel's limit of %d", pos[n], unix.BPF_MAXINSNS)
	}
	out := make([]unix.SockFilter, 0, pos[n])
	for i, in := range a.ins {
		switch {
		case in.code == opJa:
			t := target(i, in.jt)
			if t <= i {
				return nil, fmt.Errorf("internal error: backward jump at %d", i)
			}
			out = append(out, unix.SockFilter{Code: in.code, K: uint32(pos[t] - pos[i] - 1)})
		case isCond(in.code):
			t, f := target(i, in.jt), target(i, in.jf)
			if t <= i || f <= i {
				return nil, fmt.Errorf("internal error: backward jump at %d", i)
			}
			if expanded[i] {
				out = append(out,
					unix.SockFilter{Code: in.code, Jt: 0, Jf: 1, K: in.k},
					unix.SockFilter{Code: opJa, K: uint32(pos[t] - pos[i] - 2)},
					unix.SockFilter{Code: opJa, K: uint32(pos[f] - pos[i] - 3)})
			} else {
				out = append(out, unix.SockFilter{Code: in.code, Jt: uint8(pos[t] - pos[i] - 1), Jf: uint8(pos[f] - pos[i] - 1), K: in.k})
			}
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	return out, nil
}
