package mountinfo

import (
	"os"
	"reflect"
	"runtime"
	"testing"
)

// TestParse reads lines of every shape the parser meets: optional fields (none, one, two), an
// escaped path, a mount point that is itself "-", a line of another shape (skipped), a CRLF
// ending and no final newline.
func TestParse(t *testing.T) {
	in := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n" +
		"not a mountinfo line\n" +
		"31 30 0:27 /a\\040b /mnt/with\\040space rw shared:5 master:2 - cgroup cg\\134x rw,memory\r\n" +
		"40 22 0:30 - - rw - tmpfs none\n" +
		"41 22 0:31 / /last rw - tmpfs none rw"
	want := []Mount{
		{ID: 22, Parent: 1, Root: "/", Point: "/", Options: "rw,relatime", Optional: []string{"shared:1"}, FSType: "ext4", Source: "/dev/sda1", SuperOptions: "rw"},
		{ID: 30, Parent: 22, Root: "/", Point: "/sys/fs/cgroup", Options: "ro,nosuid", Optional: []string{}, FSType: "tmpfs", Source: "tmpfs", SuperOptions: "ro,mode=755"},
		{ID: 31, Parent: 30, Root: "/a b", Point: "/mnt/with space", Options: "rw", Optional: []string{"shared:5", "master:2"}, FSType: "cgroup", Source: `cg\x`, SuperOptions: "rw,memory"},
		{ID: 40, Parent: 22, Root: "-", Point: "-", Options: "rw", Optional: []string{}, FSType: "tmpfs", Source: "none"},
		{ID: 41, Parent: 22, Root: "/", Point: "/last", Options: "rw", Optional: []string{}, FSType: "tmpfs", Source: "none", SuperOptions: "rw"},
	}
	if got := parse([]byte(in)); !reflect.DeepEqual(got, want) {
		t.Fatalf("parse:\n got %+v\nwant %+v", got, want)
	}
}

// TestReadAllocatesLittle: a create reads mountinfo several times, and every 4 KiB a berth
// process allocates is a page fault (docs/performance.md). Reading this process's own
// mountinfo must cost about its text and its mounts, not a scanner's 64 KiB buffer.
func TestReadAllocatesLittle(t *testing.T) {
	ms, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	const reads = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < reads; i++ {
		if _, err := Read(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// The text twice (the read and its string; an engine's overlay lines run to kilobytes),
	// a Mount (about 160 bytes) and its optional fields per line, and a fields slice.
	per := (after.TotalAlloc - before.TotalAlloc) / reads
	if limit := 2*uint64(len(text)) + uint64(len(ms))*200 + 8<<10; per > limit {
		t.Fatalf("Read allocates %d bytes for %d mounts, want at most %d", per, len(ms), limit)
	}
}
