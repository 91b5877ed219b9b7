package mountinfo

import "testing"

func TestVisibleDropsCoveredMounts(t *testing.T) {
	in := []Mount{
		{ID: 1, Point: "/"},
		{ID: 2, Point: "/sys/fs/cgroup", FSType: "tmpfs"},
		{ID: 3, Point: "/sys/fs/cgroup/unified", FSType: "cgroup2"},
		{ID: 4, Point: "/sys/fs/cgroup/memory", FSType: "cgroup"},
		{ID: 5, Point: "/sys/fs/cgroup/unified", FSType: "tmpfs"}, // covers 3
		{ID: 6, Point: "/mnt", FSType: "tmpfs"},
		{ID: 7, Point: "/mnt/a", FSType: "ext4"},
		{ID: 8, Point: "/mnt", FSType: "tmpfs"}, // covers 6 and 7
	}
	var got []int
	for _, m := range Visible(in) {
		got = append(got, m.ID)
	}
	want := []int{1, 2, 4, 5, 8}
	if len(got) != len(want) {
		t.Fatalf("visible %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("visible %v, want %v", got, want)
		}
	}
}
