//go:build cgo

package nsenter

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// This test binary's constructor pinned it too: every thread has its affinity back, CPUs
// counts what the process was started with, and the runtime started with one P.
func TestPinnedStart(t *testing.T) {
	want, ok := startAffinity()
	if !ok {
		t.Skip("not pinned: one CPU, or GOMAXPROCS set")
	}
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(atoi(e.Name()), &got); err != nil {
			continue // exited
		}
		if got != *want {
			t.Errorf("thread %s: affinity %v, want %v", e.Name(), got, *want)
		}
	}
	if CPUs() != want.Count() || CPUs() < 2 {
		t.Errorf("CPUs %d, want %d", CPUs(), want.Count())
	}
	// The runtime started with one P; nothing gives it the others back by itself (image's
	// parallel work raises GOMAXPROCS, image/workers.go).
	if runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("GOMAXPROCS %d: the runtime did not start with one P", runtime.GOMAXPROCS(0))
	}
}
