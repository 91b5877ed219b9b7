package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var nsTypes = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// nsLinks prints the container's namespace links, one "name ns:[inode]" per line.
const nsLinks = `for n in pid net mnt ipc uts user cgroup time; do echo "$n $(readlink /proc/self/ns/$n)"; done`

func parseNsLinks(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	if len(m) != 8 {
		t.Fatalf("namespace links not read: %q", out)
	}
	return m
}

func hostNs(t *testing.T, pid string, name string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func withUserNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}

// Every namespace kind, created new: each link inside differs from the host's.
func TestEveryNamespaceCreated(t *testing.T) {
	e := newEnv(t, "sh", "-c", nsLinks)
	e.spec.Linux.Namespaces = nil
	for _, ty := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace, specs.TimeNamespace} {
		e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: ty})
	}
	withUserNS(e.spec)
	r := e.run("ns-all")
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	in := parseNsLinks(t, r.stdout)
	for _, name := range nsTypes {
		if in[name] == hostNs(t, "self", name) {
			t.Errorf("%s namespace is the host's (%s)", name, in[name])
		}
	}
}

// A user-namespaced container is root inside and the mapped uid outside.
func TestUserNamespaceRootInsideMappedOutside(t *testing.T) {
	e := newEnv(t, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map; touch /dev/shm/x && stat -c %u /dev/shm/x; ls -ln /dev/null; sleep 100")
	withUserNS(e.spec)
	e.writeSpec()
	out := e.t.TempDir() + "/out"
	f, _ := os.Create(out)
	defer f.Close()
	cmd := exec.Command(berthBin, "--root", e.root, "create", "--bundle", e.bundle, "ns-user")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(out)
		t.Fatalf("create: %v: %s", err, data)
	}
	pid := strconv.Itoa(e.state("ns-user").Pid)
	e.mustBerth("start", "ns-user")
	var data []byte
	for i := 0; i < 200; i++ {
		data, _ = os.ReadFile(out)
		if strings.Count(string(data), "\n") >= 5 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 5 || lines[0] != "0" || lines[1] != "0" || lines[3] != "0" {
		t.Fatalf("inside: want uid 0, gid 0, a new file owned by 0; got %q", data)
	}
	if f := strings.Fields(lines[2]); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map inside: %q", lines[2])
	}
	// /dev/null cannot be made with mknod in a user namespace: it is the host's, bound in.
	if !strings.Contains(lines[4], "1,") || !strings.Contains(lines[4], "3") {
		t.Errorf("/dev/null inside: %q", lines[4])
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") {
			if f := strings.Fields(l); f[1] != "100000" || f[2] != "100000" {
				t.Errorf("outside: %s, want 100000", l)
			}
		}
	}
	if hostNs(t, pid, "user") == hostNs(t, "self", "user") {
		t.Error("the container shares the host's user namespace")
	}
	e.mustBerth("delete", "--force", "ns-user")
}

// holder starts a process in new namespaces (util-linux unshare) for containers to join.
func holder(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("unshare", append(args, "sleep", "100")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	// unshare execs sleep once the namespaces exist; with --fork its child does, and the
	// child is the one in the new pid and time namespaces.
	for i := 0; i < 200; i++ {
		if l, _ := os.Readlink("/proc/" + pid + "/exe"); strings.HasSuffix(l, "sleep") {
			return pid
		}
		if out, _ := exec.Command("pgrep", "-P", pid).Output(); len(out) > 0 {
			child := strings.TrimSpace(string(out))
			if l, _ := os.Readlink("/proc/" + child + "/exe"); strings.HasSuffix(l, "sleep") {
				return child
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("namespace holder did not start")
	return ""
}

// Joining by path: the container's links equal the holder's, for every kind.
func TestEveryNamespaceJoined(t *testing.T) {
	for _, c := range []struct {
		name    string
		holder  []string
		join    []specs.LinuxNamespaceType
		userMap bool
	}{
		// pid: the holder must fork for its children to be in the new pid namespace; join
		// the namespace of the forked child instead (its pid is found below).
		{"net uts ipc cgroup", []string{"-n", "-u", "-i", "-C"}, []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace}, false},
		{"mnt time", []string{"-m", "--propagation", "private", "-T", "--boottime", "1000", "--fork"}, []specs.LinuxNamespaceType{specs.MountNamespace, specs.TimeNamespace}, false},
		{"user then new others", []string{"-U", "--map-root-user"}, []specs.LinuxNamespaceType{specs.UserNamespace}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			pid := holder(t, c.holder...)
			e := newEnv(t, "sh", "-c", nsLinks)
			ns := []specs.LinuxNamespace{}
			joined := map[string]bool{}
			for _, ty := range c.join {
				ns = append(ns, specs.LinuxNamespace{Type: ty, Path: "/proc/" + pid + "/ns/" + nsTypes[ty]})
				joined[nsTypes[ty]] = true
			}
			for _, n := range e.spec.Linux.Namespaces {
				if !joined[nsTypes[n.Type]] {
					ns = append(ns, n)
				}
			}
			e.spec.Linux.Namespaces = ns
			if c.userMap {
				// The holder maps only root: devpts cannot be given the unmapped gid 5.
				for i, m := range e.spec.Mounts {
					if m.Type == "devpts" {
						var o []string
						for _, x := range m.Options {
							if x != "gid=5" {
								o = append(o, x)
							}
						}
						e.spec.Mounts[i].Options = o
					}
				}
			}
			r := e.run("ns-join")
			if r.code != 0 {
				t.Fatalf("run: exit %d: %s", r.code, r.stderr)
			}
			in := parseNsLinks(t, r.stdout)
			for name := range joined {
				if want := hostNs(t, pid, name); in[name] != want {
					t.Errorf("%s: inside %s, holder %s", name, in[name], want)
				}
			}
			if c.userMap {
				// The new namespaces belong to the joined user namespace: the container
				// mounted its own /proc for its own pid namespace.
				if in["pid"] == hostNs(t, pid, "pid") || in["mnt"] == hostNs(t, pid, "mnt") {
					t.Errorf("pid/mnt not new: %v", in)
				}
			}
		})
	}
}

// A pid namespace joined by path: the container's process is a member, not pid 1.
func TestPidNamespaceJoined(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "ns-pid1")
	first := e.state("ns-pid1").Pid
	j := newEnv(t, "sh", "-c", "echo $$; "+nsLinks)
	var ns []specs.LinuxNamespace
	for _, n := range j.spec.Linux.Namespaces {
		if n.Type == specs.PIDNamespace {
			n.Path = fmt.Sprintf("/proc/%d/ns/pid", first)
		}
		ns = append(ns, n)
	}
	j.spec.Linux.Namespaces = ns
	r := j.run("ns-pid2")
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.SplitN(r.stdout, "\n", 2)
	if lines[0] == "1" {
		t.Errorf("joined pid namespace: the process is pid 1, want a later member")
	}
	if in := parseNsLinks(t, lines[1]); in["pid"] != hostNs(t, strconv.Itoa(first), "pid") {
		t.Errorf("pid namespace %s, want the first container's", in["pid"])
	}
	e.mustBerth("delete", "--force", "ns-pid1")
}

// linux.timeOffsets shift the container's clocks and nothing else's.
func TestTimeNamespaceOffsets(t *testing.T) {
	e := newEnv(t, "cat", "/proc/uptime")
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	e.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10 * 86400}}
	r := e.run("ns-time")
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	in, _ := strconv.ParseFloat(strings.Fields(r.stdout)[0], 64)
	host, _ := os.ReadFile("/proc/uptime")
	out, _ := strconv.ParseFloat(strings.Fields(string(host))[0], 64)
	if d := in - out; d < 10*86400-60 || d > 10*86400+60 {
		t.Errorf("uptime inside %.0f, outside %.0f: want 10 days more", in, out)
	}
}

// Combinations the kernel or the spec forbid are refused before anything is made.
func TestNamespaceCombinationsRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(s *specs.Spec)
		want  string
	}{
		{"not a namespace file", func(s *specs.Spec) {
			s.Linux.Namespaces[0].Path = "/etc/hostname"
		}, "linux.namespaces[pid].path"},
		{"wrong namespace type", func(s *specs.Spec) {
			s.Linux.Namespaces[0].Path = "/proc/self/ns/net"
		}, "is not a pid namespace"},
		{"net sysctl without netns", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "linux.sysctl[net.ipv4.ip_forward]"},
		{"host sysctl", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"}
		}, "not namespaced"},
		{"offsets without time ns", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1}}
		}, "linux.timeOffsets"},
		{"user ns without mappings", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "linux.uidMappings"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			c.setup(e.spec)
			e.writeSpec()
			r := e.berth("create", "--bundle", e.bundle, "ns-bad")
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q, want it to mention %q", r.code, r.stderr, c.want)
			}
			e.assertGone("ns-bad")
		})
	}
}

// No namespace listed at all: the container inherits every namespace of the runtime
// (runtime.md), the mounts it needs are made on the host under its rootfs and chroot replaces
// pivot_root; delete removes every one of those mounts, and exec lands in its root.
func TestNoNamespacesInheritsTheHosts(t *testing.T) {
	rf := t.TempDir()
	if err := copyTree(rootfs, rf); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sh", "-c", nsLinks+"; wc -l < /etc/passwd; sleep 100")
	e.spec.Root.Path = rf
	e.spec.Linux.Namespaces = nil
	e.spec.Hostname = ""
	e.writeSpec()
	out := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(out)
	cmd := exec.Command(berthBin, "--root", e.root, "run", "-d", "--bundle", e.bundle, "ns-none")
	cmd.Stdout, cmd.Stderr = f, f
	err := cmd.Run()
	f.Close()
	if err != nil {
		data, _ := os.ReadFile(out)
		t.Fatalf("run: %v: %s", err, data)
	}
	var data []byte
	for i := 0; i < 200 && strings.Count(string(data), "\n") < 9; i++ {
		time.Sleep(10 * time.Millisecond)
		data, _ = os.ReadFile(out)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 9 {
		t.Fatalf("output %q", data)
	}
	in := parseNsLinks(t, strings.Join(lines[:8], "\n"))
	for _, name := range nsTypes {
		if in[name] != hostNs(t, "self", name) {
			t.Errorf("%s: %s inside, host %s: want the host's", name, in[name], hostNs(t, "self", name))
		}
	}
	if strings.TrimSpace(lines[8]) != "2" {
		t.Errorf("the container sees an /etc/passwd of %s lines, want its own 2", lines[8])
	}
	if r := e.mustBerth("exec", "ns-none", "cat", "/etc/passwd"); !strings.HasPrefix(r.stdout, "root:x:0:0:root:/root:/bin/sh\nnobody") {
		t.Errorf("exec sees %q, want the container's /etc/passwd", r.stdout)
	}
	mounted := func() int {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Count(string(mi), " "+rf)
	}
	if mounted() == 0 {
		t.Errorf("no mount under the rootfs on the host while it runs")
	}
	e.mustBerth("delete", "--force", "ns-none")
	if n := mounted(); n != 0 {
		t.Errorf("%d mounts left under the rootfs after delete", n)
	}
}

// An idmapped bind mount (mounts[].uidMappings, in the form of the container's own mapping, as
// with runc and crun): in a user-namespaced container, the files of a root-owned source are
// the container's root's, where a plain bind shows them as the overflow id; the host's files
// keep their owners.
func TestIdmappedMount(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o755)
	os.Chmod(filepath.Dir(src), 0o755) // the mapped root must reach it to bind it
	file := filepath.Join(src, "f")
	os.WriteFile(file, []byte("x"), 0o644)
	// The mapped root cannot make mount points in the root-owned shared rootfs.
	for _, d := range []string{"idm", "plain"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	e := newEnv(t, "sh", "-c", "stat -c '%u:%g' /idm/f /plain/f")
	withUserNS(e.spec)
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/idm", Type: "bind", Source: src, Options: []string{"bind", "idmap"},
			UIDMappings: e.spec.Linux.UIDMappings, GIDMappings: e.spec.Linux.GIDMappings},
		specs.Mount{Destination: "/plain", Type: "bind", Source: src, Options: []string{"bind"}})
	r := e.run("idm-1")
	if r.code != 0 || r.stdout != "0:0\n65534:65534\n" {
		t.Fatalf("exit %d, out %q, err %q: want root's through the idmapped mount, the overflow id through the plain one", r.code, r.stdout, r.stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil || st.Uid != 0 {
		t.Errorf("the host's file changed owner: %d (%v)", st.Uid, err)
	}
	// Not a bind mount: refused naming the mount.
	e.spec.Mounts[len(e.spec.Mounts)-2].Type = "tmpfs"
	e.spec.Mounts[len(e.spec.Mounts)-2].Options = []string{"idmap"}
	if r := e.run("idm-2"); r.code == 0 || !strings.Contains(r.stderr, "idmapped mounts must be bind mounts") {
		t.Errorf("idmapped tmpfs: exit %d, %q", r.code, r.stderr)
	}
	e.assertGone("idm-2")
}

// Pod sysctls as Kubernetes sets them, in a config shaped as containerd's CRI writes it
// (readonlyPaths lists /proc/sys): they are written before /proc/sys is made read-only, as
// runc writes them, and /proc/sys is read-only for the container afterwards.
func TestSysctlsWrittenBeforeProcSysReadonly(t *testing.T) {
	bundle := runcSpecBundle(t, "sh", "-c", "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/fs/mqueue/msg_max /proc/sys/net/ipv4/ip_unprivileged_port_start; echo 0 > /proc/sys/kernel/shm_rmid_forced || echo still read-only")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		linux := cfg["linux"].(map[string]any)
		linux["sysctl"] = map[string]string{"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net.ipv4.ip_unprivileged_port_start": "0"}
		linux["maskedPaths"] = []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}
		linux["readonlyPaths"] = []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	})
	e := newEnv(t)
	r := e.berth("run", "--bundle", bundle, "sysctl-cri")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "1\n100\n0\n") || !strings.Contains(r.stdout, "still read-only") {
		t.Errorf("exit %d, out %q, err %q: want the sysctls set and /proc/sys read-only", r.code, r.stdout, r.stderr)
	}
}

// kernel.hostname in a uts namespace is refused naming the hostname field it conflicts with
// (runc), kernel.domainname too when the domainname field is set (crun); kernel.domainname
// alone is written, in its /proc/sys path form too (runc accepts "kernel/domainname").
func TestUTSSysctlsAsRunc(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(cfg map[string]any)
		want   string // in stderr when refused, in stdout otherwise
		refuse bool
	}{
		{"kernel.hostname", func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["sysctl"] = map[string]string{"kernel.hostname": "other"}
		}, `linux.sysctl[kernel.hostname]: not allowed as it conflicts with the OCI "hostname" field`, true},
		{"kernel.domainname and domainname", func(cfg map[string]any) {
			cfg["domainname"] = "field"
			cfg["linux"].(map[string]any)["sysctl"] = map[string]string{"kernel.domainname": "other"}
		}, `linux.sysctl[kernel.domainname]: not allowed as it conflicts with the OCI "domainname" field`, true},
		{"kernel.domainname", func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["sysctl"] = map[string]string{"kernel.domainname": "dom.example"}
		}, "runc dom.example\n", false},
		{"kernel/domainname", func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["sysctl"] = map[string]string{"kernel/domainname": "dom.example"}
		}, "runc dom.example\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bundle := runcSpecBundle(t, "sh", "-c", "echo $(hostname) $(cat /proc/sys/kernel/domainname)")
			editRuncSpec(t, bundle, c.edit)
			e := newEnv(t)
			r := e.berth("run", "--bundle", bundle, "uts-sysctl")
			if c.refuse && (r.code == 0 || !strings.Contains(r.stderr, c.want)) || !c.refuse && (r.code != 0 || r.stdout != c.want) {
				t.Errorf("exit %d, out %q, err %q; want %q", r.code, r.stdout, r.stderr, c.want)
			}
			e.assertGone("uts-sysctl")
		})
	}
}

// A failure in the init's C constructor stops the init with the constructor's own words: here
// a joined user namespace that does not map 0, so the init cannot become root in it. (The
// constructor once handed its errors over in an environment variable the Go side never saw,
// and the init went on in whatever namespaces it had reached.)
func TestConstructorFailureStopsInit(t *testing.T) {
	pid := holder(t, "-U", "--map-user=1000", "--map-group=1000")
	e := newEnv(t, "true")
	ns := []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/" + pid + "/ns/user"}}
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != specs.UserNamespace {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = ns
	r := e.run("ns-nomap")
	if r.code == 0 || !strings.Contains(r.stderr, "nsenter: becoming root in the joined user namespace (is 0 mapped?)") {
		t.Fatalf("run joining a user namespace without 0 mapped: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("not one line: %q", r.stderr)
	}
	e.assertGone("ns-nomap")
}
