package namespaces

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMapTextAndDescribe(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	if got, want := mapText(m), "0 1000 1\n1 100000 65536\n"; got != want {
		t.Errorf("mapText = %q, want %q", got, want)
	}
	if got, want := describe(m), "[0->1000 (1), 1->100000 (65536)]"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
}

func TestNeedsHelper(t *testing.T) {
	own := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	wide := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	if os.Geteuid() == 0 {
		if NeedsHelper(wide, 0) {
			t.Error("root needs no helper")
		}
		return
	}
	if NeedsHelper(own, 1000) || !NeedsHelper(own, 1001) || !NeedsHelper(wide, 1000) {
		t.Error("an ordinary user needs the helper for anything but its own id alone")
	}
}

func TestSubIDRanges(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	data := "alice:100000:65536\n# comment\nbob:165536:65536\n1002:231072:65536\nalice:300000:10\nbroken\n"
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SubIDRanges(f, []string{"1000", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]uint64{{100000, 65536}, {300000, 10}}; !reflect.DeepEqual(got, want) {
		t.Errorf("alice: %v, want %v", got, want)
	}
	if got, _ := SubIDRanges(f, []string{"1002", "carol"}); !reflect.DeepEqual(got, [][2]uint64{{231072, 65536}}) {
		t.Errorf("by uid: %v", got)
	}
	if got, err := SubIDRanges(filepath.Join(t.TempDir(), "none"), []string{"x"}); err != nil || got != nil {
		t.Errorf("missing file: %v %v", got, err)
	}
}
