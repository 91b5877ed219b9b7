package guest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
)

type statsEvent struct {
	Type string             `json:"type"`
	ID   string             `json:"id"`
	Data *cgroups.RuncStats `json:"data"`
}

func decodeStats(t *testing.T, line string) statsEvent {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var ev statsEvent
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", line, err)
	}
	return ev
}

// On cgroup v2: pause/resume through cgroup.freeze, ps from cgroup.procs, and events
// --stats in runc's shape (swap reported as memory+swap, as runc does on v2).
func TestPsPauseStatsV2(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 1000 & while :; do :; done")
	e.spec.Linux.CgroupsPath = "/cg2/pe-v2"
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20)}
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(20)}
	pid := e.startDetached("pe-v2")
	var pids []int
	waitFor(5*time.Second, func() bool {
		r := e.mustBerth("ps", "--format", "json", "pe-v2")
		pids = nil
		json.Unmarshal([]byte(r.stdout), &pids)
		return len(pids) == 2
	})
	if len(pids) != 2 || (pids[0] != pid && pids[1] != pid) {
		t.Fatalf("ps --format json: %v (init %d)", pids, pid)
	}
	if procs := cg(t, "/cg2/pe-v2", "cgroup.procs"); len(strings.Fields(procs)) != 2 {
		t.Errorf("cgroup.procs: %q", procs)
	}
	e.mustBerth("pause", "pe-v2")
	if s := stateOf(e, "pe-v2"); s != "paused" {
		t.Errorf("state after pause: %s", s)
	}
	u1 := keyed(t, "/cg2/pe-v2", "cpu.stat", "usage_usec")
	time.Sleep(300 * time.Millisecond)
	if u2 := keyed(t, "/cg2/pe-v2", "cpu.stat", "usage_usec"); u2 != u1 {
		t.Errorf("cpu usage grew while paused: %d -> %d", u1, u2)
	}
	if r := e.berth("pause", "pe-v2"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("second pause: exit %d %q", r.code, r.stderr)
	}
	e.mustBerth("resume", "pe-v2")
	if s := stateOf(e, "pe-v2"); s != "running" {
		t.Errorf("state after resume: %s", s)
	}
	ev := decodeStats(t, e.mustBerth("events", "--stats", "pe-v2").stdout)
	d := ev.Data
	if ev.Type != "stats" || d == nil {
		t.Fatalf("event %+v", ev)
	}
	if d.Memory.Usage.Usage == 0 || d.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory.usage %+v", d.Memory.Usage)
	}
	if d.Memory.Swap.Limit != 96<<20 || d.Memory.Swap.Usage < d.Memory.Usage.Usage {
		t.Errorf("memory.swap %+v (runc: memory+swap, limit = memory.max + memory.swap.max)", d.Memory.Swap)
	}
	if d.Pids.Current != 2 || d.Pids.Limit != 20 {
		t.Errorf("pids %+v", d.Pids)
	}
	if d.CPU.Usage.Total == 0 || d.CPU.Usage.User == 0 {
		t.Errorf("cpu.usage %+v", d.CPU.Usage)
	}
	if len(d.Memory.Raw) == 0 || d.Memory.Raw["anon"] == 0 {
		t.Errorf("memory.raw: %v", d.Memory.Raw)
	}
	for size, h := range d.Hugetlb {
		if h.Max != 0 {
			t.Errorf("hugetlb %s max %d: v2 has no max usage, runc prints none", size, h.Max)
		}
	}
}

// An OOM kill in the container's group is an "oom" event (memory.events watched with
// inotify), and the stream ends when the container stops.
func TestEventsOOMV2(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 1; exec /helper")
	e.spec.Linux.CgroupsPath = "/cg2/pe-oom"
	e.spec.Process.Env = append(e.spec.Process.Env, "BERTH_GUEST_ROLE=alloc", "BERTH_GUEST_MB=256")
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
	e.startDetached("pe-oom")
	cmd := exec.Command(berthBin, "--root", e.root, "events", "--interval", "10s", "pe-oom")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan []string)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		cmd.Wait()
		done <- lines
	}()
	select {
	case lines := <-done:
		if len(lines) == 0 || lines[len(lines)-1] != `{"type":"oom","id":"pe-oom"}` {
			t.Errorf("events: %q, want an oom event last", lines)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("events did not end within 20s of an OOM-killed container")
	}
	if _, err := os.Stat("/sys/fs/cgroup/cg2/pe-oom"); err != nil {
		t.Fatal(err)
	}
}
