package explain

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Now reads the same clock as clock_gettime(CLOCK_MONOTONIC), which berth's other processes
// (and the C constructor) read.
func TestNowIsClockMonotonic(t *testing.T) {
	var ts unix.Timespec
	before := Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	after := Now()
	if sys := ts.Nano(); sys < before || sys > after {
		t.Errorf("clock_gettime read %d, outside Now's %d..%d", sys, before, after)
	}
}
