package seccomp

import "sort"

//go:generate go run mksyscalls.go

type syscallEntry struct {
	name             string
	x86_64, x86, x32 int32
}

// x32SyscallBit marks x32 syscalls, which share AUDIT_ARCH_X86_64 with x86_64.
const x32SyscallBit = 0x40000000

// syscallNumber resolves a syscall name for an architecture. ok is false when the
// architecture has no such syscall (or the name is unknown).
func syscallNumber(name string, a arch) (nr uint32, ok bool) {
	i := syscallIndex(name)
	if i < 0 {
		return 0, false
	}
	return syscallTable[i].number(a)
}

// syscallIndex is the index of name in syscallTable, -1 if unknown.
func syscallIndex(name string) int {
	i := sort.Search(len(syscallTable), func(i int) bool { return syscallTable[i].name >= name })
	if i == len(syscallTable) || syscallTable[i].name != name {
		return -1
	}
	return i
}

func (e *syscallEntry) number(a arch) (nr uint32, ok bool) {
	var n int32
	switch a {
	case archX86_64:
		n = e.x86_64
	case archX86:
		n = e.x86
	case archX32:
		if e.x32 < 0 {
			return 0, false
		}
		return uint32(e.x32) | x32SyscallBit, true
	}
	return uint32(n), n >= 0
}
