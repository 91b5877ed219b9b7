//go:build cgo

package sigrelay

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// One test: Catch takes the process's handlers for good, so its cases share one Relay.
func TestRelay(t *testing.T) {
	r, err := Catch()
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want unix.Signal) {
		t.Helper()
		got, err := r.Next()
		if err != nil || got != want {
			t.Fatalf("Next: %v, %v; want %v", got, err, want)
		}
	}

	// Sent signals arrive in the order sent, a fault signal sent by a process too.
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGUSR1, unix.SIGINT, unix.Signal(40), unix.SIGSEGV, unix.SIGWINCH} {
		if err := unix.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
		expect(s)
	}

	// A child's exit wakes the reader.
	if err := exec.Command("true").Run(); err != nil {
		t.Fatal(err)
	}
	expect(unix.SIGCHLD)

	// A write to a stderr whose reader is gone fails with EPIPE instead of killing the
	// process, and the SIGPIPE is held like any other.
	saved, err := unix.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[0])
	if err := unix.Dup2(p[1], 2); err != nil {
		t.Fatal(err)
	}
	_, werr := os.Stderr.Write([]byte("x"))
	unix.Dup2(saved, 2)
	unix.Close(saved)
	unix.Close(p[1])
	if werr == nil {
		t.Fatal("a write to a broken stderr succeeded")
	}
	expect(unix.SIGPIPE)

	// A fault in Go code is still the Go runtime's: a panic that can be recovered, each time.
	for i := 0; i < 2; i++ {
		if !nilDerefPanics() {
			t.Fatal("a nil dereference did not panic")
		}
	}
	var b [1]byte
	if n, _ := unix.Read(r.fd, b[:]); n > 0 {
		t.Fatalf("the fault reached the relay: signal %d", b[0])
	}
}

var nilPtr *int

func nilDerefPanics() (panicked bool) {
	defer func() { panicked = recover() != nil }()
	return *nilPtr == 1
}
