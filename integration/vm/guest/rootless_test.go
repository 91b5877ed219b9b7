package guest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The rootless user of these tests: an ordinary uid, no capability, as systemd's
// user@.service would leave a session (without systemd here: the test delegates by hand).
const rlUID, rlGID = 1000, 1000

// rootlessDelegation makes /sys/fs/cgroup/<name> a delegated subtree of the user, as systemd
// does for user@.service: the directory and its cgroup.procs, cgroup.subtree_control and
// cgroup.threads are the user's, and the controllers are enabled in its parent (the root).
// The user's commands run in <name>/shell, so that berth's own group (and the common ancestor
// with the container's, which clone3 CLONE_INTO_CGROUP needs writable) is inside it.
func rootlessDelegation(t *testing.T, name string) (shell *os.File) {
	t.Helper()
	dir := filepath.Join(cgroupRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(dir, f), rlUID, rlGID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "shell"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"", "cgroup.procs", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(dir, "shell", f), rlUID, rlGID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("delegated %s: controllers %s", dir, cg(t, name, "cgroup.controllers"))
	f, err := os.Open(filepath.Join(dir, "shell"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		// Whatever containers are left were deleted by the test's cleanup; the groups go.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(dir)
	})
	return f
}

// rlEnv is the user's berth: a state root under its own XDG_RUNTIME_DIR and a bundle it owns.
type rlEnv struct {
	t      *testing.T
	dir    string
	bundle string
	shell  *os.File
}

func newRLEnv(t *testing.T, shell *os.File) *rlEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "rl-")
	if err != nil {
		t.Fatal(err)
	}
	r := &rlEnv{t: t, dir: dir, bundle: filepath.Join(dir, "bundle"), shell: shell}
	for _, d := range []string{filepath.Join(dir, "xdg"), r.bundle} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, rlUID, rlGID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "xdg", "berth"))
		for _, e := range ents {
			r.berth("delete", "--force", e.Name())
		}
		os.RemoveAll(dir)
	})
	return r
}

// berth runs as the user (uid and gid 1000, no supplementary group, hence no capability),
// born in the delegated subtree's shell group.
func (r *rlEnv) berth(args ...string) result {
	r.t.Helper()
	cmd := exec.Command(berthBin, args...)
	cmd.Dir = r.bundle
	cmd.Env = []string{"PATH=/bin", "HOME=" + r.dir, "XDG_RUNTIME_DIR=" + filepath.Join(r.dir, "xdg")}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: rlUID, Gid: rlGID, Groups: []uint32{}},
		UseCgroupFD: true, CgroupFD: int(r.shell.Fd()),
	}
	out, _ := os.CreateTemp(r.dir, "stdout")
	errf, _ := os.CreateTemp(r.dir, "stderr")
	defer os.Remove(out.Name())
	defer os.Remove(errf.Name())
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("running berth as uid %d: %v", rlUID, err)
	}
	o, _ := os.ReadFile(out.Name())
	x, _ := os.ReadFile(errf.Name())
	return result{string(o), string(x), code}
}

func (r *rlEnv) must(args ...string) result {
	r.t.Helper()
	res := r.berth(args...)
	if res.code != 0 {
		r.t.Fatalf("berth %s (uid %d): exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), rlUID, res.code, res.stdout, res.stderr)
	}
	return res
}

// spec writes `berth spec --rootless` (as the user) with the test's edits.
func (r *rlEnv) spec(edit func(cfg map[string]any)) {
	r.t.Helper()
	path := filepath.Join(r.bundle, "config.json")
	os.Remove(path)
	r.must("spec", "--rootless")
	data, err := os.ReadFile(path)
	if err != nil {
		r.t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		r.t.Fatal(err)
	}
	cfg["root"].(map[string]any)["path"] = rootfs
	cfg["process"].(map[string]any)["terminal"] = false
	edit(cfg)
	if data, err = json.Marshal(cfg); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// A rootless container in a delegated cgroup v2 subtree: its group is made there (next to
// berth's own), memory and pids limits are written and read back, ps and events --stats read
// it, and both limits bite: a fork past pids.max fails, an allocation past memory.max is
// OOM-killed.
func TestRootlessDelegatedCgroup(t *testing.T) {
	shell := rootlessDelegation(t, "rl")
	r := newRLEnv(t, shell)
	const id = "rl-limits"
	r.spec(func(cfg map[string]any) {
		cfg["process"].(map[string]any)["args"] = []any{"sleep", "1000"}
		cfg["linux"].(map[string]any)["resources"] = map[string]any{
			"memory": map[string]any{"limit": 64 << 20},
			"pids":   map[string]any{"limit": 20},
		}
	})
	r.must("create", id)
	group := "/rl/" + id
	if _, err := os.Stat(filepath.Join(cgroupRoot, group)); err != nil {
		t.Fatalf("the container's group is not %s (next to berth's own /rl/shell): %v", group, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(cgroupRoot, group), &st); err != nil || st.Uid != rlUID {
		t.Errorf("%s belongs to uid %d, want the user's %d", group, st.Uid, rlUID)
	}
	expectFile(t, group, "memory.max", strconv.Itoa(64<<20))
	expectFile(t, group, "pids.max", "20")
	r.must("start", id)
	ps := r.must("ps", id)
	if !strings.Contains(ps.stdout, "sleep") {
		t.Errorf("ps: %s", ps.stdout)
	}
	ev := r.must("events", "--stats", id)
	var stats struct {
		Data struct {
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(ev.stdout), &stats); err != nil {
		t.Fatalf("events --stats: %v: %s", err, ev.stdout)
	}
	if stats.Data.Pids.Limit != 20 || stats.Data.Pids.Current == 0 || stats.Data.Memory.Usage.Limit != 64<<20 {
		t.Errorf("events --stats: pids %+v, memory limit %d: %s", stats.Data.Pids, stats.Data.Memory.Usage.Limit, ev.stdout)
	}
	// update works on the user's group too.
	r.must("update", "--pids-limit", "30", id)
	expectFile(t, group, "pids.max", "30")
	// Inside, /sys/fs/cgroup is the container's own group (cgroup2 cannot be mounted from its
	// user namespace: the bind runc makes too), read-only.
	in := r.must("exec", id, "sh", "-c", "cat /sys/fs/cgroup/pids.max; { echo 5 > /sys/fs/cgroup/pids.max; } 2>/dev/null && echo CGWRITE; mkdir /sys/fs/cgroup/x 2>/dev/null && echo CGMKDIR; grep ' /sys/fs/cgroup ' /proc/self/mounts")
	t.Logf("inside:\n%s", in.stdout)
	if !strings.HasPrefix(in.stdout, "30\n") || strings.Contains(in.stdout, "CGWRITE") || strings.Contains(in.stdout, "CGMKDIR") {
		t.Errorf("/sys/fs/cgroup inside: want the group's own pids.max (30), read-only:\n%s", in.stdout)
	}
	// pids.max bites: a shell exec'd in the container forks sleepers until it is refused (the
	// shell may give up at the first refusal: its status does not matter).
	r.berth("exec", "-d", id, "sh", "-c", "for i in $(seq 60); do sleep 100 & done; sleep 100")
	if !waitFor(20*time.Second, func() bool { return keyed(t, group, "pids.events", "max") > 0 }) {
		t.Fatalf("pids.events max never grew; pids.current %s", cg(t, group, "pids.current"))
	}
	if n, _ := strconv.Atoi(cg(t, group, "pids.current")); n > 30 {
		t.Errorf("pids.current %d is above pids.max 30", n)
	}
	t.Logf("pids.current %s of pids.max 30, pids.events max %d", cg(t, group, "pids.current"), keyed(t, group, "pids.events", "max"))
	r.must("kill", id, "KILL")
	if !waitFor(10*time.Second, func() bool { return !strings.Contains(r.must("state", id).stdout, `"running"`) }) {
		t.Fatal("the container did not stop")
	}
	r.must("delete", id)
	if _, err := os.Stat(filepath.Join(cgroupRoot, group)); err == nil {
		t.Errorf("%s is left after delete", group)
	}

	// memory.max bites: the helper allocates 256 MiB under 32 MiB and is OOM-killed.
	const oomID = "rl-oom"
	r.spec(func(cfg map[string]any) {
		p := cfg["process"].(map[string]any)
		p["args"] = []any{"/helper"}
		p["env"] = append(p["env"].([]any), "BERTH_GUEST_ROLE=alloc", "BERTH_GUEST_MB=256")
		cfg["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": 32 << 20, "swap": 32 << 20}}
	})
	before := keyed(t, "/rl", "memory.events", "oom_kill")
	res := r.berth("run", oomID)
	if res.code != 137 {
		t.Errorf("run: exit %d, want 137 (OOM-killed)\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if after := keyed(t, "/rl", "memory.events", "oom_kill"); after <= before {
		t.Errorf("/rl memory.events oom_kill: %d before, %d after", before, after)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "rl", oomID)); err == nil {
		t.Errorf("/rl/%s is left after run", oomID)
	}
}

// Without delegation (the user owns nothing under /sys/fs/cgroup), a rootless config that
// asks for a limit is refused naming the field, and one without limits runs in no cgroup.
func TestRootlessWithoutDelegation(t *testing.T) {
	shell, err := os.Open(cgroupRoot) // berth runs in the root group: nothing there is the user's
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()
	r := newRLEnv(t, shell)
	r.spec(func(cfg map[string]any) {
		cfg["process"].(map[string]any)["args"] = []any{"true"}
		cfg["linux"].(map[string]any)["resources"] = map[string]any{"pids": map[string]any{"limit": 20}}
	})
	res := r.berth("run", "rl-nodeleg")
	msg := strings.TrimSpace(res.stderr)
	if res.code != 1 || !strings.Contains(msg, "linux.resources.pids.limit") || !strings.Contains(msg, "no delegated cgroup") {
		t.Errorf("want exit 1 naming linux.resources.pids.limit and the missing delegation, got %d: %q", res.code, msg)
	}
	r.spec(func(cfg map[string]any) { cfg["process"].(map[string]any)["args"] = []any{"true"} })
	if res := r.berth("run", "rl-nodeleg"); res.code != 0 {
		t.Errorf("without limits: exit %d: %s", res.code, res.stderr)
	}
}
