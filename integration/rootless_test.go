package integration

// Rootless operation: berth run by an ordinary user (created here, with a subordinate id range
// in /etc/subuid and /etc/subgid), through setpriv, no root anywhere in its process chain.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/cgroups"
)

const rootlessUserName = "berth-rootless"

// rootlessUser is the test user and its subordinate ranges.
type rootlessUser struct {
	uid, gid       int
	subuid, subgid int // first id of a 65536-id range
}

// ensureRootlessUser makes the user (idempotent) and gives it a 65536-id range in /etc/subuid
// and /etc/subgid when it has none (useradd may already have, from login.defs).
func ensureRootlessUser(t *testing.T) rootlessUser {
	t.Helper()
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Fatalf("newuidmap is needed (apt-get install uidmap; .ci/deps installs it): %v", err)
	}
	u, err := user.Lookup(rootlessUserName)
	if err != nil {
		if out, err := exec.Command("useradd", "-M", "-s", "/bin/sh", rootlessUserName).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(rootlessUserName); err != nil {
			t.Fatal(err)
		}
	}
	ru := rootlessUser{}
	ru.uid, _ = strconv.Atoi(u.Uid)
	ru.gid, _ = strconv.Atoi(u.Gid)
	ru.subuid = ensureSubRange(t, "/etc/subuid", rootlessUserName)
	ru.subgid = ensureSubRange(t, "/etc/subgid", rootlessUserName)
	return ru
}

// ensureSubRange returns the start of name's 65536-id range in file, appending one after
// every range listed there if it has none.
func ensureSubRange(t *testing.T, file, name string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	next := 100000
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		if f[0] == name && count >= 65536 {
			return start
		}
		if start+count > next {
			next = start + count
		}
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s:%d:65536\n", name, next); err != nil {
		t.Fatal(err)
	}
	return next
}

// rootlessEnv is one test's setting for the user: a directory it can reach, its own
// XDG_RUNTIME_DIR, a copy of berth it owns (as an ordinary user's install would be), a bundle.
type rootlessEnv struct {
	t      *testing.T
	u      rootlessUser
	dir    string
	xdg    string
	bin    string
	bundle string
	path   string // PATH for berth (newuidmap is looked up there)
}

func newRootlessEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	return newRootlessEnvFor(t, ensureRootlessUser(t))
}

func newRootlessEnvFor(t *testing.T, u rootlessUser) *rootlessEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &rootlessEnv{t: t, u: u, dir: dir, xdg: filepath.Join(dir, "xdg"), bin: filepath.Join(dir, "bin", "berth"),
		bundle: filepath.Join(dir, "bundle"), path: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	for _, d := range []string{r.xdg, filepath.Dir(r.bin), r.bundle} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(berthBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{r.xdg, filepath.Dir(r.bin), r.bin, r.bundle} {
		if err := os.Chown(d, u.uid, u.gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(r.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r.bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever a failed test left: its containers, as the user, then the files.
		out, _ := r.cmd("list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			_ = r.cmd("delete", "--force", id).Run()
		}
		_ = os.RemoveAll(dir)
	})
	return r
}

// cmd is berth run as the user (setpriv: its uid, gid and groups; no capability), with only
// PATH, HOME and XDG_RUNTIME_DIR in its environment.
func (r *rootlessEnv) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--reuid", strconv.Itoa(r.u.uid), "--regid", strconv.Itoa(r.u.gid), "--init-groups",
		"env", "-i", "PATH=" + r.path, "HOME=" + r.dir, "XDG_RUNTIME_DIR=" + r.xdg, r.bin}, args...)
	c := exec.Command("setpriv", full...)
	c.Dir = r.bundle
	return c
}

func (r *rootlessEnv) berth(args ...string) result {
	r.t.Helper()
	// Files, not pipes: a detached container keeps berth's stdio open long after it exits.
	out, err := os.CreateTemp(r.dir, "stdout")
	if err != nil {
		r.t.Fatal(err)
	}
	errf, err := os.CreateTemp(r.dir, "stderr")
	if err != nil {
		r.t.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer os.Remove(errf.Name())
	defer out.Close()
	defer errf.Close()
	c := r.cmd(args...)
	c.Stdout, c.Stderr = out, errf
	err = c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("running berth as %s: %v", rootlessUserName, err)
	}
	o, _ := os.ReadFile(out.Name())
	x, _ := os.ReadFile(errf.Name())
	return result{string(o), string(x), code}
}

func (r *rootlessEnv) must(args ...string) result {
	r.t.Helper()
	res := r.berth(args...)
	if res.code != 0 {
		r.t.Fatalf("berth %s (as %s): exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), rootlessUserName, res.code, res.stdout, res.stderr)
	}
	return res
}

// create starts a detached container (its stdio: berth's, files).
func (r *rootlessEnv) create(id string) result {
	r.t.Helper()
	return r.berth("create", id)
}

func (r *rootlessEnv) status(id string) string {
	r.t.Helper()
	var s struct{ Status string }
	if err := json.Unmarshal([]byte(r.must("state", id).stdout), &s); err != nil {
		r.t.Fatal(err)
	}
	return s.Status
}

// stateDirs lists what the state root holds.
func (r *rootlessEnv) stateDirs() []string {
	ents, _ := os.ReadDir(filepath.Join(r.xdg, "berth"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// initsOf lists the live processes whose command line is a berth init for id.
func initsOf(id string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); string(cmdline) == "berth\x00init\x00"+id+"\x00" {
			out = append(out, e.Name())
		}
	}
	return out
}

// statOwner is a file's owner on the host.
func statOwner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// The bundle of `berth spec --rootless` (byte for byte runc's, run as the same user), through
// its lifecycle as an ordinary user: state under $XDG_RUNTIME_DIR/berth, create, exec, start,
// kill, delete; the container cannot write the berth binary the user owns, /sys is a
// read-only bind and the cgroup tree is not writable.
func TestRootlessSpecLifecycle(t *testing.T) {
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	ours, err := os.ReadFile(filepath.Join(r.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("runc"); err == nil {
		runcDir := filepath.Join(r.dir, "runc-spec")
		if err := os.Mkdir(runcDir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chown(runcDir, r.u.uid, r.u.gid)
		c := exec.Command("setpriv", "--reuid", strconv.Itoa(r.u.uid), "--regid", strconv.Itoa(r.u.gid), "--init-groups", "runc", "spec", "--rootless")
		c.Dir = runcDir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("runc spec --rootless: %v: %s", err, out)
		}
		theirs, err := os.ReadFile(filepath.Join(runcDir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("berth spec --rootless differs from runc's (same user):\n%s\n---\n%s", ours, theirs)
		}
	}
	if !strings.Contains(string(ours), fmt.Sprintf(`"hostID": %d`, r.u.uid)) {
		t.Fatalf("the spec does not map the caller's uid %d:\n%s", r.u.uid, ours)
	}
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sleep", "1000"}
	})
	binSum := fileSum(t, r.bin)

	const id = "rl-life"
	if res := r.create(id); res.code != 0 {
		t.Fatalf("create as %s: exit %d: %s", rootlessUserName, res.code, res.stderr)
	}
	if got := r.stateDirs(); len(got) != 1 || got[0] != id {
		t.Fatalf("state root $XDG_RUNTIME_DIR/berth holds %v, want [%s]", got, id)
	}
	if st := r.status(id); st != "created" {
		t.Fatalf("status %q after create", st)
	}
	// The init waits as the sealed berth (an ordinary user gets the sealed memfd copy): a
	// process of the container, even one that may ptrace it, reads it but cannot write it.
	res := r.must("exec", "--cap", "CAP_SYS_PTRACE", id, "sh", "-c",
		`id -u; cat /proc/self/uid_map; readlink /proc/1/exe; head -c 4 /proc/1/exe >/dev/null && echo READ; `+
			`{ echo pwned >> /proc/1/exe; } 2>/dev/null && echo WROTE; `+
			`grep -E ' /sys | /sys/fs/cgroup' /proc/self/mounts; `+
			`touch /sys/berth-test 2>/dev/null && echo SYSWRITE; mkdir /sys/fs/cgroup/berth-test 2>/dev/null && echo CGWRITE; `+
			`for f in /sys/fs/cgroup/*/cgroup.procs /sys/fs/cgroup/cgroup.procs; do [ -e "$f" ] && { echo 1 >> "$f"; } 2>/dev/null && echo CGPROCS $f; done; echo END`)
	t.Logf("inside:\n%s", res.stdout)
	out := res.stdout
	if !strings.HasPrefix(out, "0\n") || !strings.Contains(out, fmt.Sprintf("0 %10d %10d", r.u.uid, 1)) {
		t.Errorf("exec: want uid 0 mapped to %d, got:\n%s", r.u.uid, out)
	}
	if !strings.Contains(out, "READ") || strings.Contains(out, r.bin) {
		t.Errorf("the waiting init's /proc/1/exe: want a readable sealed copy, not %s:\n%s", r.bin, out)
	}
	for _, bad := range []string{"WROTE", "SYSWRITE", "CGWRITE", "CGPROCS"} {
		if strings.Contains(out, bad) {
			t.Errorf("the container could write (%s):\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "END") {
		t.Errorf("the exec'd script did not finish:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && (f[1] == "/sys" || strings.HasPrefix(f[1], "/sys/fs/cgroup")) && !strings.HasPrefix(f[3], "ro") {
			t.Errorf("%s is mounted writable: %s", f[1], l)
		}
	}
	if fileSum(t, r.bin) != binSum {
		t.Fatal("the berth binary the user owns was changed from inside the container")
	}
	r.must("start", id)
	if st := r.status(id); st != "running" {
		t.Fatalf("status %q after start", st)
	}
	if res := r.must("exec", id, "ps", "-o", "pid,args"); !strings.Contains(res.stdout, "sleep 1000") {
		t.Errorf("exec ps: %s", res.stdout)
	}
	// Without a cgroup (this v1 host), ps lists the container's pid namespace; events --stats
	// reads the cgroup it does not have, and says so on one line.
	if res := r.must("ps", id); !strings.Contains(res.stdout, "sleep") || strings.Count(res.stdout, "\n") != 2 {
		t.Errorf("ps: want its one process:\n%s", res.stdout)
	}
	for _, cmd := range [][]string{{"events", "--stats", id}} {
		res := r.berth(cmd...)
		t.Logf("berth %s: exit %d: %s%s", strings.Join(cmd, " "), res.code, res.stdout, res.stderr)
		if cgroups.DetectMode() != cgroups.Unified {
			if res.code == 0 || !strings.Contains(res.stderr, "cgroup") || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
				t.Errorf("berth %s without a cgroup: want one line naming the cgroup, got exit %d: %q", strings.Join(cmd, " "), res.code, res.stderr)
			}
		}
	}
	// --all without a cgroup to list the processes: the init, and its pid namespace with it.
	r.must("kill", "--all", id, "KILL")
	r.waitStopped(id)
	r.must("delete", id)
	if got := r.stateDirs(); len(got) != 0 {
		t.Fatalf("state root holds %v after delete", got)
	}
	if fileSum(t, r.bin) != binSum {
		t.Fatal("the berth binary changed")
	}
}

func (r *rootlessEnv) waitStopped(id string) {
	r.t.Helper()
	for i := 0; i < 200; i++ {
		if r.status(id) == "stopped" {
			return
		}
		_ = exec.Command("sleep", "0.05").Run()
	}
	r.t.Fatalf("%s did not stop", id)
}

// A user namespace with the user's 65536-id subordinate range (newuidmap/newgidmap): the
// container's uid 1000 is the range's 1000th id on the host.
func TestRootlessSubordinateRange(t *testing.T) {
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	rfs := filepath.Join(r.bundle, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, rfs).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", r.u.uid, r.u.gid), rfs).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["readonly"] = false
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sh", "-c", "echo fds $(ls /proc/self/fd); cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; grep Groups: /proc/self/status; " +
			"touch /owned && chown 1000:1000 /owned && echo CHOWNED; mkdir -p /tmp/d && chown 65535:65535 /tmp/d && echo TOP"}
		caps := []any{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"}
		for _, k := range []string{"bounding", "effective", "permitted"} {
			p["capabilities"].(map[string]any)[k] = caps
		}
		delete(p["capabilities"].(map[string]any), "ambient")
		l := cfg["linux"].(map[string]any)
		l["uidMappings"] = []any{map[string]any{"containerID": 0, "hostID": r.u.uid, "size": 1}, map[string]any{"containerID": 1, "hostID": r.u.subuid, "size": 65536}}
		l["gidMappings"] = []any{map[string]any{"containerID": 0, "hostID": r.u.gid, "size": 1}, map[string]any{"containerID": 1, "hostID": r.u.subgid, "size": 65536}}
	})
	res := r.berth("run", "rl-range")
	t.Logf("run: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	if res.code != 0 || !strings.Contains(res.stdout, "CHOWNED") || !strings.Contains(res.stdout, "TOP") {
		t.Fatalf("run with a subordinate range: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	// No descriptor of berth's (the init pipe, the helper's pipes) reaches the program: ls
	// sees stdio and its own directory.
	if !strings.Contains(res.stdout, "fds 0 1 2 3\n") {
		t.Errorf("descriptors in the container: want stdio only:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, fmt.Sprintf("%10d %10d %10d", 1, r.u.subuid, 65536)) {
		t.Errorf("uid_map inside lacks the subordinate range:\n%s", res.stdout)
	}
	// newgidmap leaves setgroups allowed; the constructor dropped the user's groups.
	if !strings.Contains(res.stdout, "allow") || !strings.Contains(res.stdout, "Groups:\t\n") && !strings.Contains(res.stdout, "Groups:\t \n") && !strings.Contains(res.stdout, "Groups:\t0\n") {
		t.Errorf("setgroups/groups inside:\n%q", res.stdout)
	}
	for f, want := range map[string][2]int{
		"owned": {r.u.subuid + 999, r.u.subgid + 999},
		"tmp/d": {r.u.subuid + 65534, r.u.subgid + 65534},
	} {
		fi, err := os.Stat(filepath.Join(rfs, f))
		if err != nil {
			t.Fatal(err)
		}
		uid, gid := statOwner(fi)
		if uid != want[0] || gid != want[1] {
			t.Errorf("/%s is %d:%d on the host, want %d:%d (the container's ids through the subordinate range)", f, uid, gid, want[0], want[1])
		}
	}
	if got := r.stateDirs(); len(got) != 0 {
		t.Errorf("state root holds %v after run", got)
	}
	// Detached, as the container's uid 1000, with a process exec'd as 2000: ps (by the pid
	// namespace on a host without a cgroup for the user) shows both, as their host uids.
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		p := cfg["process"].(map[string]any)
		p["args"] = []any{"sleep", "1000"}
		p["user"] = map[string]any{"uid": 1000, "gid": 1000}
	})
	const id = "rl-range-d"
	if res := r.create(id); res.code != 0 {
		t.Fatalf("create: exit %d: %s", res.code, res.stderr)
	}
	r.must("start", id)
	r.must("exec", "-d", "--user", "2000:2000", id, "sleep", "999")
	ps := r.must("ps", id).stdout
	t.Logf("ps:\n%s", ps)
	for _, want := range []string{fmt.Sprintf("%d ", r.u.subuid+999), fmt.Sprintf("%d ", r.u.subuid+1999), "sleep 1000", "sleep 999"} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps lacks %q", want)
		}
	}
	r.must("kill", "--all", id, "KILL")
	r.waitStopped(id)
	r.must("delete", id)
}

// A mapping the user may not have (host ids outside its /etc/subuid range), and one that needs
// newuidmap when it is not installed: create fails with one line naming the mapping and what
// is missing, and leaves no state and no process.
func TestRootlessBadMapping(t *testing.T) {
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	bad := r.u.subuid + 10*65536
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"true"}
		l := cfg["linux"].(map[string]any)
		l["uidMappings"] = []any{map[string]any{"containerID": 0, "hostID": r.u.uid, "size": 1}, map[string]any{"containerID": 1, "hostID": bad, "size": 65536}}
		l["gidMappings"] = []any{map[string]any{"containerID": 0, "hostID": r.u.gid, "size": 1}, map[string]any{"containerID": 1, "hostID": r.u.subgid, "size": 65536}}
	})
	check := func(id string, want ...string) {
		t.Helper()
		res := r.create(id)
		t.Logf("create %s: exit %d: %s", id, res.code, res.stderr)
		msg := strings.TrimSpace(res.stderr)
		if res.code != 1 || strings.Contains(msg, "\n") {
			t.Errorf("create %s: want exit 1 and one line, got %d: %q", id, res.code, res.stderr)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("create %s: error %q does not say %q", id, msg, w)
			}
		}
		if got := r.stateDirs(); len(got) != 0 {
			t.Errorf("state root holds %v after the failed create", got)
		}
		if p := initsOf(id); len(p) != 0 {
			t.Errorf("init processes left for %s: %v", id, p)
		}
	}
	check("rl-bad", "linux.uidMappings", fmt.Sprintf("1->%d (65536)", bad), "newuidmap", "/etc/subuid")
	// Without the helper on PATH.
	empty := filepath.Join(r.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	r.path = empty
	check("rl-nohelper", "linux.uidMappings", "newuidmap", "uidmap")
}

// On a host without a delegated cgroup (this machine's v1 hierarchies), a rootless config that
// asks for a limit is refused before anything runs, naming the field, in runc's words.
func TestRootlessLimitWithoutCgroup(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("cgroup v2 host: see the VM suite's delegated test")
	}
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"true"}
		cfg["linux"].(map[string]any)["resources"] = map[string]any{"pids": map[string]any{"limit": 100}}
	})
	// --systemd-cgroup would need systemd's user instance: refused, naming the flag.
	if res := r.berth("--systemd-cgroup", "create", "rl-systemd"); res.code != 1 || !strings.Contains(res.stderr, "--systemd-cgroup") || len(r.stateDirs()) != 0 {
		t.Errorf("--systemd-cgroup as a user: want exit 1 naming the flag and nothing left, got %d: %q (state %v)", res.code, res.stderr, r.stateDirs())
	}
	res := r.create("rl-limit")
	msg := strings.TrimSpace(res.stderr)
	t.Logf("create: exit %d: %s", res.code, msg)
	if res.code != 1 || !strings.Contains(msg, "linux.resources.pids.limit") || !strings.Contains(msg, "cannot set pids limit: container could not join or create cgroup") {
		t.Errorf("want exit 1 naming linux.resources.pids.limit, got %d: %q", res.code, msg)
	}
	if got := r.stateDirs(); len(got) != 0 {
		t.Errorf("state root holds %v", got)
	}
	// Without the limit it runs, in no cgroup.
	editRuncSpec(t, r.bundle, func(cfg map[string]any) { delete(cfg["linux"].(map[string]any), "resources") })
	r.must("run", "rl-nolimit")
}

// Default devices listed again in linux.devices (runc's dev.bats, run rootless): /dev/tty is
// bound a second time over the first bind (it failed with "file exists"), /dev/ptmx stays the
// link to the container's devpts (a host ptmx left the terminal without its ptys).
func TestRootlessRedundantDevices(t *testing.T) {
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sh", "-c", "ls -lLn /dev/tty /dev/ptmx; readlink /dev/ptmx"}
		cfg["linux"].(map[string]any)["devices"] = []any{
			map[string]any{"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
			map[string]any{"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
		}
	})
	res := r.must("run", "rl-devs")
	t.Logf("%s", res.stdout)
	if !strings.Contains(res.stdout, "pts/ptmx") || !regexpMatch(`crw-rw-rw-\s+1\s+65534\s+65534\s+5,\s+0 .*/dev/tty`, res.stdout) {
		t.Errorf("want /dev/tty the host's 5,0 (owner unmapped) and /dev/ptmx -> pts/ptmx:\n%s", res.stdout)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// A cgroup v1 host where root delegated a group in each hierarchy to the user (as runc's
// rootless.sh does for its suite): a config naming it gets it, with its limits, ps, events
// --stats, pause and resume; a cgroupsPath the user may not write is refused in runc's words.
func TestRootlessV1Delegated(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("cgroup v1 delegation; the VM suite covers v2")
	}
	r := newRootlessEnv(t)
	const deleg = "berth-rootless-it"
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.Remove(made[i])
		}
	})
	mounts, _ := os.ReadDir("/sys/fs/cgroup")
	for _, m := range mounts {
		dir := filepath.Join("/sys/fs/cgroup", m.Name())
		if _, err := os.Stat(filepath.Join(dir, "tasks")); err != nil {
			continue // the hybrid host's cgroup2 tree, or not a hierarchy
		}
		d := filepath.Join(dir, deleg)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		made = append(made, d)
		files := []string{"", "tasks", "cgroup.procs"}
		if m.Name() == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, _ := os.ReadFile(filepath.Join(dir, f))
				_ = os.WriteFile(filepath.Join(d, f), v, 0)
			}
			files = append(files, "cpuset.cpus", "cpuset.mems")
		}
		for _, f := range files {
			if err := os.Chown(filepath.Join(d, f), r.u.uid, r.u.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.must("spec", "--rootless")
	const id = "rl-v1"
	group := "/" + deleg + "/" + id
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sleep", "1000"}
		l := cfg["linux"].(map[string]any)
		l["cgroupsPath"] = group
		l["resources"] = map[string]any{"pids": map[string]any{"limit": 50}, "memory": map[string]any{"limit": 64 << 20}}
	})
	if res := r.create(id); res.code != 0 {
		t.Fatalf("create: exit %d: %s", res.code, res.stderr)
	}
	r.must("start", id)
	for file, want := range map[string]string{"pids/" + group[1:] + "/pids.max": "50", "memory/" + group[1:] + "/memory.limit_in_bytes": strconv.Itoa(64 << 20)} {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", file))
		if err != nil || strings.TrimSpace(string(data)) != want {
			t.Errorf("%s = %q (%v), want %s", file, data, err, want)
		}
	}
	if res := r.must("ps", id); !strings.Contains(res.stdout, "sleep") {
		t.Errorf("ps: %s", res.stdout)
	}
	if res := r.must("events", "--stats", id); !strings.Contains(res.stdout, `"limit":50`) {
		t.Errorf("events --stats: %s", res.stdout)
	}
	r.must("pause", id)
	if st := r.status(id); st != "paused" {
		t.Errorf("status %q after pause", st)
	}
	r.must("resume", id)
	r.must("kill", "--all", id, "KILL")
	r.waitStopped(id)
	r.must("delete", id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", group)); err == nil {
		t.Errorf("the group is left after delete")
	}
	// A path the user does not own: runc's words.
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["linux"].(map[string]any)["cgroupsPath"] = "/berth-rootless-not-delegated/x"
		delete(cfg["linux"].(map[string]any), "resources")
	})
	res := r.create("rl-v1-denied")
	if msg := strings.TrimSpace(res.stderr); res.code != 1 || !strings.Contains(msg, "unable to apply cgroup configuration") || !strings.Contains(msg, "permission denied") || strings.Contains(msg, "\n") {
		t.Errorf("undelegated cgroupsPath: want one line in runc's words, got %d: %q", res.code, msg)
	}
	if got := r.stateDirs(); len(got) != 0 {
		t.Errorf("state root holds %v", got)
	}
}

// A user with no range in /etc/subuid (a system user: useradd gives those none) asking for a
// subordinate mapping: the error says the file has no range for it.
func TestRootlessNoSubordinateRange(t *testing.T) {
	const name = "berth-rootless-nosub"
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "-r", "-M", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, _ := os.ReadFile(f)
		if strings.Contains("\n"+string(data), "\n"+name+":") || strings.Contains("\n"+string(data), "\n"+u.Uid+":") {
			t.Skipf("%s has a range for %s: the test needs a user without one", f, name)
		}
	}
	ru := rootlessUser{}
	ru.uid, _ = strconv.Atoi(u.Uid)
	ru.gid, _ = strconv.Atoi(u.Gid)
	r := newRootlessEnvFor(t, ru)
	r.must("spec", "--rootless")
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"true"}
		l := cfg["linux"].(map[string]any)
		l["uidMappings"] = []any{map[string]any{"containerID": 0, "hostID": ru.uid, "size": 1}, map[string]any{"containerID": 1, "hostID": 100000, "size": 65536}}
	})
	res := r.create("rl-nosub")
	msg := strings.TrimSpace(res.stderr)
	t.Logf("create: exit %d: %s", res.code, msg)
	if res.code != 1 || strings.Contains(msg, "\n") || !strings.Contains(msg, "linux.uidMappings") || !strings.Contains(msg, "/etc/subuid has no range for uid "+u.Uid+"/"+name) {
		t.Errorf("want one line naming linux.uidMappings and the missing /etc/subuid range, got %d: %q", res.code, msg)
	}
	if got := r.stateDirs(); len(got) != 0 {
		t.Errorf("state root holds %v", got)
	}
	if p := initsOf("rl-nosub"); len(p) != 0 {
		t.Errorf("init processes left: %v", p)
	}
}

// Root in a user namespace that is not the initial one (the user's `unshare -r`, as rootless
// podman runs its runtime): berth detects rootless operation (state under XDG_RUNTIME_DIR,
// rootless cgroups: a limit without a cgroup refused), writes the maps itself, and runs the
// spec --rootless bundle; --rootless false takes the rootful cgroup path (and fails on it here).
func TestRootlessRootInUserNamespace(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	r := newRootlessEnv(t)
	ns := func(args ...string) result {
		t.Helper()
		full := append([]string{"--reuid", strconv.Itoa(r.u.uid), "--regid", strconv.Itoa(r.u.gid), "--init-groups",
			"env", "-i", "PATH=" + r.path, "HOME=" + r.dir, "XDG_RUNTIME_DIR=" + r.xdg, "USER=" + rootlessUserName,
			"unshare", "-r", r.bin}, args...)
		c := exec.Command("setpriv", full...)
		c.Dir = r.bundle
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{out.String(), errb.String(), code}
	}
	if res := ns("spec", "--rootless"); res.code != 0 {
		t.Fatalf("spec: %s", res.stderr)
	}
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sh", "-c", "id -u; cat /proc/self/uid_map"}
	})
	res := ns("run", "rl-userns-root")
	t.Logf("run: exit %d: %s%s", res.code, res.stdout, res.stderr)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "0\n") {
		t.Fatalf("run as root of a user namespace: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(r.xdg, "berth")); err != nil {
		t.Errorf("state root: want $XDG_RUNTIME_DIR/berth: %v", err)
	}
	if cgroups.DetectMode() != cgroups.Unified {
		editRuncSpec(t, r.bundle, func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["resources"] = map[string]any{"pids": map[string]any{"limit": 100}}
		})
		if res := ns("run", "rl-userns-limit"); res.code != 1 || !strings.Contains(res.stderr, "linux.resources.pids.limit") {
			t.Errorf("auto: want the rootless refusal of a limit, got %d: %s", res.code, res.stderr)
		}
		if res := ns("--rootless", "false", "run", "rl-userns-limit"); res.code != 1 || !strings.Contains(res.stderr, "/berth/rl-userns-limit") {
			t.Errorf("--rootless false: want the rootful cgroup path tried, got %d: %s", res.code, res.stderr)
		}
	}
}

// Mount destinations that are symlinks out of the rootfs land inside it for a rootless
// container too (same resolution as for root): a directory of the user's own outside the
// rootfs, which the container's root could write, stays empty.
func TestRootlessMountDestinationsStayInRootfs(t *testing.T) {
	r := newRootlessEnv(t)
	host := filepath.Join(r.dir, "host") // the user's, writable by the container's root
	rf := filepath.Join(r.bundle, "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, rf).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	for _, d := range []string{host, filepath.Join(rf, host)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(host, filepath.Join(rf, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../.."+host, filepath.Join(rf, "evil2")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", r.u.uid, r.u.gid), host, rf).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	r.must("spec", "--rootless")
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["readonly"] = false
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sh", "-c", "touch /evil/f /evil2/g; grep -c ' " + host + "/[xy] ' /proc/self/mountinfo"}
		mounts := cfg["mounts"].([]any)
		for _, d := range []string{"/evil/x", "/evil2/y"} {
			mounts = append(mounts, map[string]any{"destination": d, "type": "tmpfs", "source": "tmpfs"})
		}
		cfg["mounts"] = mounts
	})
	res := r.berth("run", "rl-dest")
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Fatalf("a mount destination or a write through the link reached the user's directory outside the rootfs: %v", ents)
	}
	if res.code != 0 || strings.TrimSpace(res.stdout) != "2" {
		t.Fatalf("want both mounts inside the rootfs: exit %d, %q %q", res.code, res.stdout, res.stderr)
	}
}

// Root given an ordinary user's state root (berth --root /run/user/UID/berth ...) refuses it:
// the user wrote those records, and they decide what root signals, removes and runs. Here the
// user's container has a poststop hook; root's `delete --force` ran it as root.
func TestRootlessStateRootNotTrustedByRoot(t *testing.T) {
	r := newRootlessEnv(t)
	r.must("spec", "--rootless")
	marks := filepath.Join(r.dir, "marks")
	if err := os.Mkdir(marks, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(marks, 0o777)
	marker := filepath.Join(marks, "poststop")
	editRuncSpec(t, r.bundle, func(cfg map[string]any) {
		cfg["root"].(map[string]any)["path"] = rootfs
		p := cfg["process"].(map[string]any)
		p["terminal"] = false
		p["args"] = []any{"sleep", "1000"}
		cfg["hooks"] = map[string]any{"poststop": []any{map[string]any{
			"path": "/bin/sh", "args": []any{"sh", "-c", "id -u >> " + marker}}}}
	})
	const id = "rl-trust"
	if res := r.create(id); res.code != 0 {
		t.Fatalf("create as %s: exit %d: %s", rootlessUserName, res.code, res.stderr)
	}
	userRoot := filepath.Join(r.xdg, "berth")
	for _, args := range [][]string{{"delete", "--force", id}, {"kill", id, "KILL"}, {"list"}, {"state", id}} {
		out, err := exec.Command(berthBin, append([]string{"--root", userRoot}, args...)...).CombinedOutput()
		t.Logf("root: berth --root %s %s: %v: %s", userRoot, strings.Join(args, " "), err, out)
		if err == nil || !strings.Contains(string(out), "--root "+userRoot) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("root's berth %s on the user's state root: want a one-line refusal naming --root, got %v: %s", args[0], err, out)
		}
	}
	if data, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the user's poststop hook ran for root's delete (as uid %s)", strings.TrimSpace(string(data)))
	}
	if st := r.status(id); st != "created" {
		t.Fatalf("the user's container is %q after root's refused commands", st)
	}
	r.must("delete", "--force", id)
	if data, _ := os.ReadFile(marker); strings.TrimSpace(string(data)) != strconv.Itoa(r.u.uid) {
		t.Errorf("the user's own delete: poststop hook wrote %q, want its uid %d", data, r.u.uid)
	}
}
