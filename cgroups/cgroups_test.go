package cgroups

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSharesToWeight(t *testing.T) {
	for shares, w := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 100, 262144: 10000, 1 << 20: 10000} {
		if got := SharesToWeight(shares); got != w {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, w)
		}
	}
	prev := uint64(0)
	for s := uint64(2); s <= 262144; s *= 2 {
		w := SharesToWeight(s)
		if w < prev {
			t.Errorf("not monotonic at %d: %d < %d", s, w, prev)
		}
		prev = w
	}
	for w, want := range map[uint16]uint64{10: 1, 500: 4950, 1000: 10000} {
		if got := BlkioToIOWeight(w); got != want {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestParseDeviceRulesErrors(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		rule specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Type: "x"}, "devices[0].type"},
		{specs.LinuxDeviceCgroup{Type: "c", Access: "rwx"}, "devices[0].access"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i(1 << 40)}, "devices[0].major"},
	} {
		if _, err := parseDeviceRules([]specs.LinuxDeviceCgroup{c.rule}, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.rule, err, c.want)
		}
	}
}

func TestUnifiedKeys(t *testing.T) {
	for k, ok := range map[string]bool{
		"memory.high": true, "memory.oom.group": true, "cpu.weight.nice": true,
		"../memory.max": false, "memory/../../x": false, "cgroup.procs": false, "cgroup.kill": false,
		"cgroup.subtree_control": false, "nodot": false, "": false, "..": false,
	} {
		if err := checkUnifiedKey(k); (err == nil) != ok {
			t.Errorf("checkUnifiedKey(%q) = %v", k, err)
		}
	}
}

// unifiedMount finds a cgroup2 mount (/sys/fs/cgroup itself, or /sys/fs/cgroup/unified on a
// hybrid host), where device programs act whatever the v1 hierarchies say.
func unifiedMount() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := s.Text()
		i := strings.Index(l, " - ")
		if i < 0 {
			continue
		}
		pre, post := strings.Fields(l[:i]), strings.Fields(l[i+3:])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) > 4 && strings.HasPrefix(pre[4], "/sys/fs/cgroup") {
			return pre[4]
		}
	}
	return ""
}

// The device program, attached to a real cgroup2 group, decides opens of real device nodes as
// the rules say (default deny; for each access bit the last matching rule wins), and a second
// Set replaces the first program instead of stacking on it.
func TestDeviceProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mnt := unifiedMount()
	if mnt == "" {
		t.Skip("no cgroup2 mount")
	}
	parent := filepath.Join(mnt, "berth-test-upd")
	i := func(v int64) *int64 { return &v }
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	allowAll := specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"}
	cases := []struct {
		name  string
		rules [][]specs.LinuxDeviceCgroup // applied in turn; the last one counts
		want  string                      // zero-r null-w full-w
	}{
		{"none", [][]specs.LinuxDeviceCgroup{{deny}}, "no no no"},
		{"allow-all", [][]specs.LinuxDeviceCgroup{{allowAll}}, "ok ok ok"},
		{"zero-read", [][]specs.LinuxDeviceCgroup{{deny, {Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "r"}}}, "ok no no"},
		{"deny-null-write", [][]specs.LinuxDeviceCgroup{{allowAll, {Type: "c", Major: i(1), Minor: i(3), Access: "w"}}}, "ok no ok"},
		{"major-wildcard", [][]specs.LinuxDeviceCgroup{{deny, {Allow: true, Type: "c", Major: i(1), Access: "rw"}, {Type: "c", Major: i(1), Minor: i(7)}}}, "ok ok no"},
		{"read-only-everything", [][]specs.LinuxDeviceCgroup{{{Allow: true, Type: "c", Access: "r"}}}, "ok no no"},
		{"last-wins", [][]specs.LinuxDeviceCgroup{{{Type: "c", Major: i(1), Minor: i(5)}, {Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "r"}}}, "ok no no"},
		{"replaced", [][]specs.LinuxDeviceCgroup{{deny}, {allowAll}}, "ok ok ok"},
		{"replaced-2", [][]specs.LinuxDeviceCgroup{{allowAll}, {deny}}, "no no no"},
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(parent)
	tmp := t.TempDir()
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(parent, "dev-"+strconv.Itoa(n))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			defer removeDir(dir)
			for _, rules := range c.rules {
				if err := setDevicesBPF(dir, rules); err != nil {
					t.Fatal(err)
				}
			}
			errf := filepath.Join(tmp, "err")
			script := `echo $$ > ` + filepath.Join(dir, "cgroup.procs") + `
r() { if ( eval "exec 3$1" ) 2>` + errf + `; then echo ok; else echo no; fi; }
echo $(r '</dev/zero') $(r '>/dev/null') $(r '>/dev/full')`
			out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != c.want {
				t.Errorf("zero-r null-w full-w: %s, want %s", got, c.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	yes := true
	if err := Check(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "q"}}}); err == nil {
		t.Error("bad device rule passed Check")
	}
	if err := Check(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); (err == nil) != (DetectMode() == Unified) {
		t.Errorf("unified on mode %d: %v", DetectMode(), err)
	}
	oom := &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: &yes}}
	if err := Check(oom); (err == nil) == (DetectMode() == Unified) {
		t.Errorf("disableOOMKiller on mode %d: %v", DetectMode(), err)
	}
	if err := Check(nil); err != nil {
		t.Error(err)
	}
}

// On v1 an access string's other letters are passed over, as runc's v1 driver does.
func TestDeviceRuleV1String(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	rules, err := parseDeviceRules([]specs.LinuxDeviceCgroup{
		{Type: "c", Major: i(1), Minor: i(11), Access: "rwa", Allow: true},
		{Type: "b", Major: i(8), Access: "mr"},
		{Access: "rwm"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range []string{"c 1:11 rw", "b 8:* rm", "a"} {
		if got := rules[k].v1String(); got != want {
			t.Errorf("rule %d: %q, want %q", k, got, want)
		}
	}
}
