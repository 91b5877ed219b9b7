package guest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The VM is a pure cgroup v2 machine with every controller, and a container runs in the group
// its config names; --explain shows each cgroup file written with its value, and the device
// program.
func TestCgroupV2Machine(t *testing.T) {
	ctl := cg(t, "", "cgroup.controllers")
	for _, c := range []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"} {
		if !strings.Contains(" "+ctl+" ", " "+c+" ") {
			t.Errorf("controller %s missing from %q", c, ctl)
		}
	}
	e := newEnv(t, "sh", "-c", "echo hello; cat /proc/self/cgroup")
	e.spec.Linux.CgroupsPath = "/berth-vm/cg2-smoke"
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
	e.writeSpec()
	r := e.berth("--explain", "run", "--bundle", e.bundle, "cg2-smoke")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hello\n") {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"cgroups.writeFile", "/sys/fs/cgroup/berth-vm/cg2-smoke/memory.max = 67108864",
		"/sys/fs/cgroup/berth-vm/cgroup.subtree_control", "cgroups.setDevicesBPF",
	} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("--explain does not show %q:\n%s", want, r.stderr)
		}
	}
}

// With BFQ loaded, blockIO weights go to io.bfq.weight unconverted, per device too for a
// device BFQ schedules (a null_blk one). (Last: loading BFQ changes where weights go for the
// tests before it.)
func TestZIOWeightBFQ(t *testing.T) {
	// /lib/modules/extra lists bfq, null_blk and what they need, dependencies first.
	list, err := os.ReadFile("/lib/modules/extra")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range strings.Fields(string(list)) {
		args := []string{"/lib/modules/" + m}
		if m == "null_blk.ko" {
			args = append(args, "nr_devices=1")
		}
		if out, err := exec.Command("insmod", args...).CombinedOutput(); err != nil {
			t.Fatalf("insmod %s: %v %s", m, err, out)
		}
	}
	if err := os.WriteFile("/sys/block/nullb0/queue/scheduler", []byte("bfq"), 0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/sys/block/nullb0/dev")
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(string(data))
	var major, minor int64
	fmt.Sscanf(dev, "%d:%d", &major, &minor)
	e := newEnv(t, "sleep", "100")
	path := "/cg2/cg2-bfq"
	e.spec.Linux.CgroupsPath = path
	e.spec.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: u16(500),
		WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Weight: u16(200)}}}
	e.startDetached("cg2-bfq")
	got := cg(t, path, "io.bfq.weight")
	if !strings.Contains(got, "default 500") || !strings.Contains(got, dev+" 200") {
		t.Errorf("io.bfq.weight = %q, want default 500 and %s 200", got, dev)
	}
	if w := cg(t, path, "io.weight"); w != "default 100" {
		t.Errorf("io.weight = %q: written although BFQ is there", w)
	}
}
