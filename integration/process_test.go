package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestProcessSetup(t *testing.T) {
	e := newEnv(t, "sh", "-c", `id; umask; ulimit -n; ulimit -Hn; pwd; echo "FOO=$FOO"; hostname; cat /proc/sys/kernel/domainname; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)' /proc/self/status; cat /proc/self/oom_score_adj; echo "pid=$$"`)
	adj := 123
	umask := uint32(0o027)
	p := e.spec.Process
	p.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 7}, Umask: &umask}
	p.Cwd = "/tmp"
	p.Env = append(p.Env, "FOO=bar baz")
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
	p.OOMScoreAdj = &adj
	p.NoNewPrivileges = true
	caps := []string{"CAP_KILL", "CAP_NET_RAW"}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Permitted: caps, Effective: caps, Inheritable: caps, Ambient: []string{"CAP_KILL"}}
	e.spec.Hostname = "boxname"
	e.spec.Domainname = "example.org"
	r := e.run("c1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := []string{
		"uid=1000 gid=1001 groups=5,7", "0027", "321\n654", "/tmp\n", "FOO=bar baz", "boxname\nexample.org",
		// CAP_KILL is 5, CAP_NET_RAW 13: 0x2020. Ambient survives the non-root exec.
		"CapInh:\t0000000000002020", "CapPrm:\t0000000000000020", "CapEff:\t0000000000000020",
		"CapBnd:\t0000000000002020", "CapAmb:\t0000000000000020", "NoNewPrivs:\t1", "123\n", "pid=1",
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, r.stdout)
		}
	}
}

func TestNamespacesAndPivotRoot(t *testing.T) {
	e := newEnv(t, "sh", "-c", "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/mountinfo")
	r := e.run("c1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	for i, n := range []string{"pid", "mnt", "uts", "ipc", "net", "cgroup"} {
		host, _ := os.Readlink("/proc/self/ns/" + n)
		if lines[i] == host || !strings.HasPrefix(lines[i], n+":[") {
			t.Errorf("%s namespace inside %q, host %q", n, lines[i], host)
		}
	}
	mounts := map[string]string{}
	for _, l := range lines[6:] {
		f := strings.Fields(l)
		if len(f) > 5 {
			mounts[f[4]] = l
		}
	}
	// After pivot_root the rootfs is / and nothing of the host's tree remains.
	if m := mounts["/"]; m == "" || !strings.Contains(m, " ro,") {
		t.Errorf("/ is not the read-only rootfs: %q", m)
	}
	for _, want := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup", "/proc/keys", "/proc/sys"} {
		if mounts[want] == "" {
			t.Errorf("no mount at %s", want)
		}
	}
	if !strings.Contains(mounts["/proc/sys"], " ro,") {
		t.Errorf("/proc/sys not read-only: %q", mounts["/proc/sys"])
	}
	for mp := range mounts {
		if strings.HasPrefix(mp, "/tmp/") || mp == "/work" || strings.HasPrefix(mp, "/run/berth") {
			t.Errorf("host mount %s visible inside", mp)
		}
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t, "sh", "-c", "cat /proc/keys | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname && echo WROTE")
	r := e.run("c1")
	if !strings.HasPrefix(r.stdout, "0\n0\n") || strings.Contains(r.stdout, "WROTE") {
		t.Fatalf("masked paths readable or readonly path writable:\n%s\n%s", r.stdout, r.stderr)
	}
}

func TestPreserveFds(t *testing.T) {
	e := newEnv(t, "sh", "-c", "cat <&3; ls /proc/self/fd")
	e.writeSpec()
	f := filepath.Join(t.TempDir(), "data")
	os.WriteFile(f, []byte("through fd 3\n"), 0o644)
	fd3, _ := os.Open(f)
	fd4, _ := os.Open(f) // not preserved: must not reach the container
	defer fd3.Close()
	defer fd4.Close()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--preserve-fds", "1", "--bundle", e.bundle, "c1")
	cmd.ExtraFiles = []*os.File{fd3, fd4}
	r := e.berthCmd(cmd)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "through fd 3\n") {
		t.Fatalf("exit %d out %q err %q", r.code, r.stdout, r.stderr)
	}
	fds := strings.Fields(strings.TrimPrefix(r.stdout, "through fd 3\n"))
	// 0 1 2 3, plus the fd ls itself opens on the directory.
	if len(fds) > 5 || strings.Contains(r.stdout, "\n4\n5\n") {
		t.Fatalf("descriptors inside: %v", fds)
	}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		want  string
	}{
		{"missing config", func(e *env) { os.Remove(filepath.Join(e.bundle, "config.json")) }, "config.json: no such file"},
		{"malformed json", func(e *env) { os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte("{\n\"process\": ["), 0o644) }, "malformed JSON"},
		{"wrong field type", func(e *env) {
			os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(`{"ociVersion":"1.0.2","process":{"user":{"uid":"root"}}}`), 0o644)
		}, "process.user.uid"},
		{"missing rootfs", func(e *env) { e.spec.Root.Path = "/nonexistent/rootfs"; e.writeSpec() }, "root.path: /nonexistent/rootfs"},
		{"no such program", func(e *env) { e.spec.Process.Args = []string{"nosuchprog"}; e.writeSpec() }, "executable file not found in $PATH"},
		{"unknown namespace", func(e *env) {
			e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
			e.writeSpec()
		}, "linux.namespaces[6].type"},
		{"relative cwd", func(e *env) { e.spec.Process.Cwd = "tmp"; e.writeSpec() }, "process.cwd"},
		{"bad mount", func(e *env) {
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent", Options: []string{"bind"}})
			e.writeSpec()
		}, "mounts[7]"},
		{"hostname without uts", func(e *env) {
			var ns []specs.LinuxNamespace
			for _, n := range e.spec.Linux.Namespaces {
				if n.Type != specs.UTSNamespace {
					ns = append(ns, n)
				}
			}
			e.spec.Linux.Namespaces = ns
			e.writeSpec()
		}, "hostname"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			e.writeSpec()
			c.setup(e)
			for _, cmd := range []string{"create", "run"} {
				r := e.berth(cmd, "--bundle", e.bundle, "c1")
				if r.code == 0 || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%s: exit %d, stderr %q, want it to mention %q", cmd, r.code, r.stderr, c.want)
				}
				if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
					t.Errorf("%s: error is %d lines, want one: %q", cmd, n+1, r.stderr)
				}
				e.assertGone("c1")
			}
		})
	}
}

func TestCreateKilledAtAnyMomentIsCleanedByDeleteForce(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	for i, delay := range []time.Duration{0, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 8 * time.Millisecond, 20 * time.Millisecond} {
		id := "k" + string(rune('a'+i))
		cmd := exec.Command(berthBin, "--root", e.root, "create", "--bundle", e.bundle, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// Whatever state the create reached, delete --force removes all of it.
		if r := e.berth("delete", "--force", id); r.code != 0 {
			t.Errorf("delay %v: delete --force: %s", delay, r.stderr)
		}
		// A create killed before it handed init over takes init with it; one killed later
		// left a created container, which delete --force has killed.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && leftoverInit(id) {
			time.Sleep(5 * time.Millisecond)
		}
		e.assertGone(id)
	}
}

// leftoverInit finds container id's init: "berth init ID", or the waiting stage in the
// container's cgroup.
func leftoverInit(id string) bool {
	ps, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range ps {
		data, _ := os.ReadFile(p)
		if strings.HasPrefix(string(data), "berth\x00init\x00"+id+"\x00") {
			return true
		}
		if strings.HasPrefix(string(data), "berth-wait\x00") {
			cg, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cgroup"))
			if strings.Contains(string(cg), "/berth/"+id+"\n") {
				return true
			}
		}
	}
	return false
}

func TestExplainNarratesEveryStep(t *testing.T) {
	e := newEnv(t, "true")
	mem := int64(64 << 20)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}
	e.writeSpec()
	r := e.berth("--explain", "run", "--bundle", e.bundle, "c1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	order := []string{"cgroups.writeFile", "libcontainer.startInit", "rootfs.mountEntry", "rootfs.pivotRoot",
		"rootfs.maskPaths", "libcontainer.setHostnames", "libcontainer.dropBoundingSet", "libcontainer.setCapabilities", "libcontainer.execUser"}
	pos := 0
	for _, step := range order {
		i := strings.Index(r.stderr[pos:], step)
		if i < 0 {
			t.Fatalf("step %s missing or out of order in:\n%s", step, r.stderr)
		}
		pos += i
	}
	if !strings.Contains(r.stderr, "memory.limit_in_bytes = 67108864") && !strings.Contains(r.stderr, "memory.max = 67108864") {
		t.Errorf("the memory limit write is not narrated:\n%s", r.stderr)
	}
	// The same steps as JSON lines.
	r = e.berth("--explain", "--log-format", "json", "run", "--bundle", e.bundle, "c2")
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["step"] == "" || m["msg"] == "" || m["time"] == "" {
			t.Fatalf("not a JSON step: %q (%v)", l, err)
		}
		n++
	}
	if n < 20 {
		t.Errorf("only %d JSON steps", n)
	}
}

func TestLogFileJSONErrors(t *testing.T) {
	e := newEnv(t, "true")
	e.writeSpec()
	log := filepath.Join(t.TempDir(), "log.json")
	r := e.berth("--log", log, "--log-format", "json", "start", "nosuch")
	if r.code == 0 {
		t.Fatal("start of a missing container succeeded")
	}
	data, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var m map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil || m["level"] != "error" || !strings.Contains(m["msg"], "does not exist") || m["time"] == "" {
		t.Fatalf("last log line %q: %v", lines[len(lines)-1], err)
	}
}

func TestGlobalFlags(t *testing.T) {
	e := newEnv(t, "true")
	// --systemd-cgroup is accepted everywhere (containerd passes it on every call); without
	// systemd (this host), creating a container with it fails in one line that says so.
	if r := e.berth("--systemd-cgroup", "list"); r.code != 0 {
		t.Errorf("--systemd-cgroup list: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		e.writeSpec()
		r := e.berth("--systemd-cgroup", "run", "--bundle", e.bundle, "sdflag")
		if r.code == 0 || !strings.Contains(r.stderr, "systemd is not running") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("--systemd-cgroup run without systemd: %d %q", r.code, r.stderr)
		}
	}
	if r := e.berth("--rootless", "maybe", "list"); r.code == 0 {
		t.Error("--rootless maybe accepted")
	}
	if r := e.berth("--rootless", "false", "--debug", "list"); r.code != 0 {
		t.Errorf("--rootless false: %s", r.stderr)
	}
	if r := e.berth("--version"); !strings.HasPrefix(r.stdout, "runc version ") {
		t.Errorf("--version: %q", r.stdout)
	}
}

func TestSpecCommand(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.mustBerth("spec", "--bundle", dir)
	var s specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &s); err != nil || s.Root.Path != "rootfs" || len(s.Mounts) != 7 || !s.Process.Terminal {
		t.Fatalf("spec: %v %+v", err, s)
	}
	if r := e.berth("spec", "--bundle", dir); r.code == 0 {
		t.Error("spec overwrote an existing config.json")
	}
	dir2 := t.TempDir()
	e.mustBerth("spec", "--rootless", "--bundle", dir2)
	data, _ = os.ReadFile(filepath.Join(dir2, "config.json"))
	if !strings.Contains(string(data), `"type": "user"`) || !strings.Contains(string(data), "uidMappings") {
		t.Fatalf("rootless spec lacks a user namespace:\n%s", data)
	}
}

// --no-pivot (move mount + chroot, for an initramfs root that pivot_root refuses) runs a
// ramfs root with the same view: / and /.. are the rootfs.
func TestNoPivotOnRamfs(t *testing.T) {
	rf := filepath.Join(t.TempDir(), "ramroot")
	os.Mkdir(rf, 0o755)
	if err := syscall.Mount("ramfs", rf, "ramfs", 0, ""); err != nil {
		t.Skipf("ramfs: %v", err)
	}
	defer syscall.Unmount(rf, syscall.MNT_DETACH)
	if err := exec.Command("cp", "-a", rootfs+"/.", rf).Run(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sh", "-c", "cd /..; ls / | wc -l; ls | wc -l; cat /etc/passwd | head -1")
	e.spec.Root.Path = rf
	r := e.run("np-2", "--no-pivot")
	l := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(l) != 3 || l[0] != l[1] || !strings.HasPrefix(l[2], "root:x:0:0") {
		t.Errorf("--no-pivot: exit %d, out %q, err %q: want / and /.. the same, the rootfs's passwd", r.code, r.stdout, r.stderr)
	}
}

// The container gets a session keyring of its own, unless --no-new-keyring keeps the caller's.
func TestSessionKeyring(t *testing.T) {
	e := newEnv(t, "keyring")
	e.writeSpec()
	r := e.mustBerth("run", "--bundle", e.bundle, "kr-1")
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), ";_ses.berth") {
		t.Errorf("default: session keyring %q, want berth's own _ses.berth", r.stdout)
	}
	// Keyrings live in a thread's credentials: a test process without a session keyring gets
	// one here for this thread alone, so berth must be forked from this same thread to inherit
	// it (otherwise it has none, and its container sees the user's default, _uid_ses.0).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mine, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, true)
	if err != nil {
		t.Fatal(err)
	}
	r = e.mustBerth("run", "--no-new-keyring", "--bundle", e.bundle, "kr-2")
	if f := strings.Fields(r.stdout); len(f) == 0 || f[0] != strconv.Itoa(mine) {
		t.Errorf("--no-new-keyring: session keyring %q, want the caller's %d", r.stdout, mine)
	}
}

// Capabilities this kernel or berth does not know (a config written for a newer kernel, a
// misspelt or lower-case name) are left out with runc's warning, in config.json as with exec
// --cap, and the container runs with the others: the same sets as under runc.
func TestUnknownCapabilitiesIgnored(t *testing.T) {
	const warning = `level=warning msg="ignoring unknown or unavailable capabilities: [CAP_FUTURE_99 CAP_NOPE cap_chown]"`
	bundle := runcSpecBundle(t, "sh", "-c", "grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		caps := cfg["process"].(map[string]any)["capabilities"].(map[string]any)
		for _, set := range []string{"bounding", "effective", "permitted"} {
			caps[set] = append(caps[set].([]any), "CAP_NOPE", "CAP_FUTURE_99", "cap_chown")
		}
	})
	runIt := func(bin string) (string, string) {
		cmd := exec.Command(bin, "--root", t.TempDir(), "run", "--bundle", bundle, "caps-unknown")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", bin, err, stderr.String())
		}
		return string(out), stderr.String()
	}
	want, runcErr := runIt("runc")
	if !strings.Contains(runcErr, warning) {
		t.Fatalf("runc warns %q, not %q", runcErr, warning)
	}
	got, berthErr := runIt(berthBin)
	if got != want || !strings.Contains(berthErr, warning) {
		t.Errorf("berth: sets\n%s\nwarning %q\nrunc: sets\n%s", got, berthErr, want)
	}

	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "--detach", "--bundle", e.bundle, "caps-exec")
	r := e.berth("exec", "--cap", "CAP_NOPE", "--cap", "CAP_SYS_ADMIN", "caps-exec", "grep", "CapEff", "/proc/self/status")
	if r.code != 0 || !strings.Contains(r.stderr, "ignoring unknown or unavailable capabilities: [CAP_NOPE]") || !strings.Contains(r.stdout, "CapEff") {
		t.Errorf("exec --cap CAP_NOPE: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	e.mustBerth("delete", "--force", "caps-exec")
}

// A process.cwd missing from the rootfs is created there (0755), as runc creates it, before
// root.readonly takes effect (runc spec bundles are read-only); symlinks in the image lead
// it nowhere outside the rootfs. exec does not create one, as with runc.
func TestMissingCwdCreatedInsideRootfs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := makeBusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir() // what the symlinks below point at, seen from the host
	os.Symlink(host, filepath.Join(root, "abs"))
	os.Symlink("../../../../../../../.."+host, filepath.Join(root, "up"))
	os.Symlink("/proc/self/root"+host, filepath.Join(root, "magic"))
	// Dangling inside the rootfs (runc's MkdirAll fails on it too): refused.
	for _, cwd := range []string{"/abs/sub", "/magic/sub"} {
		bundle := runcSpecBundle(t, "true")
		editRuncSpec(t, bundle, func(cfg map[string]any) {
			cfg["root"].(map[string]any)["path"] = root
			cfg["process"].(map[string]any)["cwd"] = cwd
		})
		e := newEnv(t)
		if r := e.berth("run", "--bundle", bundle, "cwd-dangling"); r.code == 0 || !strings.Contains(r.stderr, "process.cwd") {
			t.Errorf("cwd %s through a dangling symlink: exit %d, err %q", cwd, r.code, r.stderr)
		}
		e.assertGone("cwd-dangling")
	}
	// Now the symlinks' target exists in the rootfs: the cwd is made there.
	os.MkdirAll(filepath.Join(root, host), 0o755)
	for i, cwd := range []string{"/new/deep/dir", "/abs/sub", "/up/sub"} {
		want := cwd // pwd inside shows where the symlinks led, within the container's root
		if i > 0 {
			want = host + "/sub"
		}
		bundle := runcSpecBundle(t, "sh", "-c", "pwd; stat -c %a .")
		editRuncSpec(t, bundle, func(cfg map[string]any) {
			cfg["root"].(map[string]any)["path"] = root
			cfg["process"].(map[string]any)["cwd"] = cwd
		})
		e := newEnv(t)
		r := e.berth("run", "--bundle", bundle, "cwd-"+strconv.Itoa(i))
		if r.code != 0 || r.stdout != want+"\n755\n" {
			t.Errorf("cwd %s: exit %d, out %q, err %q", cwd, r.code, r.stdout, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Errorf("a cwd was created outside the rootfs, in %s: %v", host, ents)
	}
	for _, p := range []string{"new/deep/dir", strings.TrimPrefix(host, "/") + "/sub"} {
		if st, err := os.Stat(filepath.Join(root, p)); err != nil || !st.IsDir() {
			t.Errorf("%s not created inside the rootfs: %v", p, err)
		}
	}

	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "cwd-exec")
	if r := e.berth("exec", "--cwd", "/no/such/dir", "cwd-exec", "true"); r.code == 0 || !strings.Contains(r.stderr, "process.cwd") {
		t.Errorf("exec into a missing cwd: exit %d, err %q", r.code, r.stderr)
	}
	e.mustBerth("delete", "--force", "cwd-exec")
}

// A cwd only the container's user may enter (a volume whose group is the user's, in a user
// namespace where root has no power over it) is entered as that user, as runc does, instead
// of failing as root; one nobody may enter still fails. Run and exec alike.
func TestCwdEnteredAsUserWhenRootCannot(t *testing.T) {
	vol := t.TempDir()
	os.Chmod(filepath.Dir(vol), 0o755)
	// Owned by host uid 5 (not mapped: root inside has no override on it), group 100100
	// (container gid 100), group-only access.
	if err := os.Chown(vol, 5, 100100); err != nil {
		t.Fatal(err)
	}
	os.Chmod(vol, 0o070)
	e := newEnv(t, "sh", "-c", "pwd; id -u")
	withUserNS(e.spec)
	e.spec.Process.User = specs.User{UID: 1000, GID: 100}
	e.spec.Process.Cwd = "/tmp"
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
	if r := e.run("cwd-user"); r.code != 0 || r.stdout != "/tmp\n1000\n" {
		t.Errorf("run: exit %d, out %q, err %q; want the process in /tmp as 1000", r.code, r.stdout, r.stderr)
	}

	e.spec.Process.Args = []string{"sleep", "100"}
	e.writeSpec()
	e.mustBerth("run", "-d", "--bundle", e.bundle, "cwd-user-exec")
	if r := e.berth("exec", "--user", "1000:100", "--cwd", "/tmp", "cwd-user-exec", "pwd"); r.code != 0 || r.stdout != "/tmp\n" {
		t.Errorf("exec: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	if r := e.berth("exec", "--user", "1001:1001", "--cwd", "/tmp", "cwd-user-exec", "pwd"); r.code == 0 || !strings.Contains(r.stderr, "process.cwd") {
		t.Errorf("exec as a user without access: exit %d, out %q, err %q; want a process.cwd error", r.code, r.stdout, r.stderr)
	}
	e.mustBerth("delete", "--force", "cwd-user-exec")
}
