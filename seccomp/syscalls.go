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

// On x86, socket and SysV IPC calls can also be made through the socketcall and ipc
// multiplexers, whose first argument names the call. libseccomp adds a rule on the
// multiplexer for every rule on such a call (its argument conditions dropped: they are behind
// a pointer), and so does this compiler.
const (
	x86Socketcall = 102
	x86IPC        = 117
)

var x86Multiplexed = map[string]struct{ mux, call uint32 }{
	"socket": {x86Socketcall, 1}, "bind": {x86Socketcall, 2}, "connect": {x86Socketcall, 3},
	"listen": {x86Socketcall, 4}, "accept": {x86Socketcall, 5}, "getsockname": {x86Socketcall, 6},
	"getpeername": {x86Socketcall, 7}, "socketpair": {x86Socketcall, 8}, "send": {x86Socketcall, 9},
	"recv": {x86Socketcall, 10}, "sendto": {x86Socketcall, 11}, "recvfrom": {x86Socketcall, 12},
	"shutdown": {x86Socketcall, 13}, "setsockopt": {x86Socketcall, 14}, "getsockopt": {x86Socketcall, 15},
	"sendmsg": {x86Socketcall, 16}, "recvmsg": {x86Socketcall, 17}, "accept4": {x86Socketcall, 18},
	"recvmmsg": {x86Socketcall, 19}, "sendmmsg": {x86Socketcall, 20},
	"semop": {x86IPC, 1}, "semget": {x86IPC, 2}, "semctl": {x86IPC, 3}, "semtimedop": {x86IPC, 4},
	"msgsnd": {x86IPC, 11}, "msgrcv": {x86IPC, 12}, "msgget": {x86IPC, 13}, "msgctl": {x86IPC, 14},
	"shmat": {x86IPC, 21}, "shmdt": {x86IPC, 22}, "shmget": {x86IPC, 23}, "shmctl": {x86IPC, 24},
}
