package sigrelay

import "golang.org/x/sys/unix"

// caught are the signals a Relay holds: every signal but those no handler can take (SIGKILL,
// SIGSTOP) and those the Go runtime needs (SIGURG, SIGPROF, and glibc's 32 to 34, which
// os/signal cannot catch either).
func caught() []unix.Signal {
	var out []unix.Signal
	for s := unix.Signal(1); s <= 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGPROF, 32, 33, 34:
			continue
		}
		out = append(out, s)
	}
	return out
}
