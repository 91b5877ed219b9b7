package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroups"
)

// CVE-2019-5736: a process in the container holds /proc/1/exe (the berth init, waiting for
// start) and, once no berth process runs any more, reopens it for writing. The write must
// fail and the binary on the host must be unchanged.
func TestBinaryCannotBeOverwrittenFromContainer(t *testing.T) {
	// A private copy, so that no other berth process keeps it busy (ETXTBSY would hide a
	// missing defence).
	bin := filepath.Join(t.TempDir(), "berth")
	orig, err := os.ReadFile(berthBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	// Output to files, not pipes: a created container would hold a pipe open.
	logf := filepath.Join(t.TempDir(), "log")
	b := func(args ...string) {
		t.Helper()
		f, _ := os.Create(logf)
		defer f.Close()
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Run(); err != nil {
			out, _ := os.ReadFile(logf)
			t.Fatalf("berth %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command(bin, "--root", root, "delete", "--force", "cve-victim").Run()
		exec.Command(bin, "--root", root, "delete", "--force", "cve-attacker").Run()
	})
	victim := newEnv(t, "sleep", "100")
	victim.writeSpec()
	b("create", "--bundle", victim.bundle, "cve-victim")
	var st struct{ Pid int }
	b("state", "cve-victim")
	out, _ := os.ReadFile(logf)
	if err := json.Unmarshal(out, &st); err != nil || st.Pid == 0 {
		t.Fatalf("state: %s", out)
	}

	// The attacker shares the victim's pid namespace and may ptrace (the waiting init is not
	// dumpable), as a privileged container could.
	script := `exec 3</proc/1/exe || { echo NOOPEN; exit; }; echo OPENED
while ! readlink /proc/1/exe | grep -q busybox; do sleep 0.05; done
for i in $(seq 200); do
  if echo PWNED >> /proc/self/fd/3 2>/tmp/err; then echo WROTE; break; fi
  grep -q busy /tmp/err || break
  sleep 0.05
done; cat /tmp/err`
	att := newEnv(t, "sh", "-c", script)
	var ns []specs.LinuxNamespace
	for _, n := range att.spec.Linux.Namespaces {
		if n.Type == specs.PIDNamespace {
			n.Path = "/proc/" + strconv.Itoa(st.Pid) + "/ns/pid"
		}
		ns = append(ns, n)
	}
	att.spec.Linux.Namespaces = ns
	att.spec.Root.Readonly = false
	caps := append(att.spec.Process.Capabilities.Bounding, "CAP_SYS_PTRACE")
	att.spec.Process.Capabilities.Bounding, att.spec.Process.Capabilities.Effective, att.spec.Process.Capabilities.Permitted = caps, caps, caps
	att.writeSpec()
	outFile := filepath.Join(t.TempDir(), "out")
	f, _ := os.Create(outFile)
	defer f.Close()
	cmd := exec.Command(bin, "--root", root, "create", "--bundle", att.bundle, "cve-attacker")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		data, _ := os.ReadFile(outFile)
		t.Fatalf("create attacker: %v: %s", err, data)
	}
	waitOutput := func(done func([]byte) bool) []byte {
		var data []byte
		for i := 0; i < 1000; i++ {
			if data, _ = os.ReadFile(outFile); done(data) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return data
	}
	b("start", "cve-attacker")
	// The victim starts only once the attacker holds /proc/1/exe (the waiting berth).
	waitOutput(func(d []byte) bool { return bytes.Contains(d, []byte("OPENED")) || bytes.Contains(d, []byte("NOOPEN")) })
	b("start", "cve-victim")
	data := waitOutput(func(d []byte) bool {
		return bytes.Contains(d, []byte("NOOPEN")) || bytes.Count(d, []byte("\n")) >= 2
	})
	after, _ := os.ReadFile(bin)
	if !bytes.Equal(after, orig) {
		t.Fatalf("the berth binary on the host was changed from inside the container: %s", data)
	}
	if bytes.Contains(data, []byte("NOOPEN")) {
		t.Fatalf("the attack could not even open /proc/1/exe (test setup broken?): %s", data)
	}
	if !bytes.Contains(data, []byte("Read-only file system")) {
		t.Fatalf("want the write refused as read-only, got %q", data)
	}
}

// A mount destination that is a symlink out of the rootfs, or that climbs with "..", lands
// inside the rootfs, also when the link dangles there (then it is made inside the rootfs).
func TestMountDestinationsStayInRootfs(t *testing.T) {
	host := t.TempDir() // must stay empty
	rf := t.TempDir()
	if err := copyTree(rootfs, rf); err != nil {
		t.Fatal(err)
	}
	os.Symlink(host, filepath.Join(rf, "evil"))                    // absolute link to the host dir
	os.Symlink("../../../../../"+host, filepath.Join(rf, "evil2")) // relative climb
	os.MkdirAll(filepath.Join(rf, host), 0o755)                    // where both resolve in the root
	e := newEnv(t, "sh", "-c", "grep -c ' "+host+"/x \\| "+host+"/y \\| /tmp/climb ' /proc/self/mountinfo")
	e.spec.Root.Path = rf
	e.spec.Root.Readonly = false
	for _, d := range []string{"/evil/x", "/evil2/y", "/../../../../tmp/climb"} {
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs"})
	}
	r := e.run("sec-dest")
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Fatalf("a mount destination reached the host directory: %v", ents)
	}
	if r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("want all three mounts inside the rootfs: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for _, p := range []string{filepath.Join(rf, host, "x"), filepath.Join(rf, host, "y"), filepath.Join(rf, "tmp", "climb")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("destination not made inside the rootfs: %v", err)
		}
	}

	// Dangling inside the root: made where the link points inside the rootfs, as runc does;
	// nothing on the host.
	os.RemoveAll(filepath.Join(rf, host))
	e.spec.Mounts = append(e.spec.Mounts[:len(e.spec.Mounts)-3], specs.Mount{Destination: "/evil/z", Type: "tmpfs", Source: "tmpfs"})
	e.spec.Process.Args = []string{"true"}
	r = e.run("sec-dest2")
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Fatalf("a dangling symlinked destination reached the host: %v", ents)
	}
	if r.code != 0 {
		t.Errorf("dangling symlinked destination: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(rf, host, "z")); err != nil {
		t.Errorf("dangling symlinked destination not made inside the rootfs: %v", err)
	}
	e.assertGone("sec-dest2")
}

// A rootfs whose /proc (or /sys) is a symlink cannot redirect the proc mount (CVE-2019-19921).
func TestSymlinkedProcRefused(t *testing.T) {
	for _, d := range []string{"proc", "sys"} {
		t.Run(d, func(t *testing.T) {
			rf := t.TempDir()
			if err := copyTree(rootfs, rf); err != nil {
				t.Fatal(err)
			}
			os.RemoveAll(filepath.Join(rf, d))
			os.Mkdir(filepath.Join(rf, "elsewhere"), 0o755)
			os.Symlink("/elsewhere", filepath.Join(rf, d))
			e := newEnv(t, "true")
			e.spec.Root.Path = rf
			r := e.run("sec-proc")
			if r.code == 0 || !strings.Contains(r.stderr, "symlink") {
				t.Fatalf("exit %d, stderr %q: want a refusal naming the symlink", r.code, r.stderr)
			}
			if ents, _ := os.ReadDir(filepath.Join(rf, "elsewhere")); len(ents) != 0 {
				t.Errorf("something was mounted through the symlink")
			}
			e.assertGone("sec-proc")
		})
	}
}

// The mount table inside matches the config: flags and propagation from mountinfo.
func TestMountTableMatchesConfig(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "file"), []byte("bound file\n"), 0o644)
	e := newEnv(t, "sh", "-c", "cat /proc/self/mountinfo; cat /bindfile; touch /ro/x 2>&1; touch /rw/x && echo RWOK")
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		specs.Mount{Destination: "/rw", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noatime", "rshared"}},
		specs.Mount{Destination: "/bindfile", Type: "none", Source: filepath.Join(src, "file"), Options: []string{"bind", "ro", "private"}},
		specs.Mount{Destination: "/slave", Type: "tmpfs", Source: "tmpfs", Options: []string{"slave", "nodiratime", "nosymfollow"}},
		specs.Mount{Destination: "/rec", Type: "bind", Source: "/sys/fs", Options: []string{"rbind", "rro", "rnoexec"}},
	)
	r := e.run("sec-mounts")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	info := map[string][]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) > 6 {
			info[f[4]] = f
		}
	}
	check := func(dest string, opts []string, optional string, super string) {
		f, ok := info[dest]
		if !ok {
			t.Errorf("%s not mounted", dest)
			return
		}
		for _, o := range opts {
			if !strings.Contains(","+f[5]+",", ","+o+",") {
				t.Errorf("%s: mount options %s lack %s", dest, f[5], o)
			}
		}
		// Optional fields run from index 6 up to "-".
		var opt []string
		i := 6
		for ; i < len(f) && f[i] != "-"; i++ {
			opt = append(opt, f[i])
		}
		joined := strings.Join(opt, " ")
		if optional == "" && joined != "" || optional != "" && !strings.Contains(joined, optional) {
			t.Errorf("%s: propagation %q, want %q", dest, joined, optional)
		}
		if super != "" && (i+3 >= len(f) || !strings.Contains(f[i+3], super)) {
			t.Errorf("%s: superblock options %v lack %s", dest, f[i:], super)
		}
	}
	check("/ro", []string{"ro", "nosuid", "nodev", "noexec"}, "", "")
	check("/rw", []string{"rw", "noatime"}, "shared:", "mode=700")
	check("/bindfile", []string{"ro"}, "", "")
	check("/slave", []string{"nodiratime", "nosymfollow"}, "", "")
	// Recursive options reach the submounts of an rbind (/sys/fs/cgroup under /sys/fs).
	subs := 0
	for dest, f := range info {
		if strings.HasPrefix(dest, "/rec/") {
			subs++
			if !strings.Contains(","+f[5]+",", ",ro,") || !strings.Contains(f[5], "noexec") {
				t.Errorf("%s: options %s, want ro and noexec from rro, rnoexec", dest, f[5])
			}
		}
	}
	if subs == 0 {
		t.Errorf("no submounts under /rec")
	}
	if !strings.Contains(r.stdout, "bound file") || !strings.Contains(r.stdout, "Read-only file system") || !strings.Contains(r.stdout, "RWOK") {
		t.Errorf("bind contents, ro refusal or rw write missing:\n%s", r.stdout)
	}
}

func copyTree(src, dst string) error {
	return exec.Command("cp", "-a", src+"/.", dst).Run()
}

// linux.rootfsPropagation "rshared" (containerd's CRI sets it for bidirectional mounts) and a
// fifo in linux.devices: both must create, as with runc.
func TestSharedRootfsPropagationAndFifoDevice(t *testing.T) {
	e := newEnv(t, "sh", "-c", "awk '$5==\"/\"' /proc/self/mountinfo; ls -l /dev/myfifo")
	e.spec.Linux.RootfsPropagation = "rshared"
	e.spec.Linux.Devices = append(e.spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/myfifo", Type: "p"})
	r := e.run("sec-shared")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "shared:") || !strings.Contains(r.stdout, "prw") {
		t.Errorf("want a shared root and a fifo: %q", r.stdout)
	}
}

// tmpcopyup (podman's --read-only tmpfs mounts): the tmpfs starts with the image's files.
func TestTmpcopyup(t *testing.T) {
	rf := t.TempDir()
	if err := copyTree(rootfs, rf); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(rf, "data/sub"), 0o750)
	os.WriteFile(filepath.Join(rf, "data/sub/f"), []byte("from the image\n"), 0o644)
	os.Symlink("sub/f", filepath.Join(rf, "data/link"))
	os.Chown(filepath.Join(rf, "data/sub/f"), 1000, 1001)
	e := newEnv(t, "sh", "-c", "cat /data/link; stat -c '%a %u:%g' /data/sub /data/sub/f; grep ' /data ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1; touch /data/new && echo WRITABLE")
	e.spec.Root.Path = rf
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "nosuid", "size=1m"}})
	r := e.run("sec-copyup")
	want := "from the image\n750 0:0\n644 1000:1001\ntmpfs\nWRITABLE\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, out %q (want %q), err %q", r.code, r.stdout, want, r.stderr)
	}
}

// SECURITY: a node listed in linux.devices is made, but under a deny-all device cgroup it must
// stay unusable: the device rules alone decide (runc adds no allow rule per linux.devices).
// Allowing it explicitly opens it, which shows the denial is the cgroup's.
func TestListedDeviceStaysDenied(t *testing.T) {
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("host is cgroup v2: covered by integration/vm")
	}
	kmsg := func(allow bool) result {
		e := newEnv(t, "sh", "-c", "ls -l /dev/kmsg >/dev/null && : >/dev/kmsg && echo OPENED")
		mode, maj, min := os.FileMode(0o666), int64(1), int64(11)
		e.spec.Linux.Devices = append(e.spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11, FileMode: &mode})
		e.spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
		if allow {
			e.spec.Linux.Resources.Devices = append(e.spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &maj, Minor: &min, Access: "w"})
		}
		return e.run("sec-kmsg")
	}
	if r := kmsg(false); r.code == 0 || strings.Contains(r.stdout, "OPENED") || !strings.Contains(r.stderr, "not permitted") {
		t.Errorf("deny-all: /dev/kmsg opened or failed for another reason: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := kmsg(true); r.code != 0 || !strings.Contains(r.stdout, "OPENED") {
		t.Errorf("allowed c 1:11 w: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// SECURITY: with --no-pivot the old root stays under the container's root. Its whole procfs
// and sysfs must be gone from the container's mount namespace: the kernel lets a new user
// namespace mount a fresh procfs (without the masked and read-only paths) or sysfs only when
// one is already fully visible there. As with runc, the mounts fail with permission denied.
func TestNoPivotHidesHostProcAndSys(t *testing.T) {
	e := newEnv(t, "sh", "-c", `unshare -mrpf sh -c 'mount -t proc none /proc && echo PROC-MOUNTED'
unshare -mrnf sh -c 'mount -t sysfs none /sys && echo SYSFS-MOUNTED'
echo done`)
	caps := append(e.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN", "CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID")
	e.spec.Process.Capabilities.Bounding, e.spec.Process.Capabilities.Effective, e.spec.Process.Capabilities.Permitted = caps, caps, caps
	e.spec.Process.NoNewPrivileges = false
	r := e.run("np-proc", "--no-pivot")
	if r.code != 0 || !strings.Contains(r.stdout, "done") {
		t.Fatalf("exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "MOUNTED") {
		t.Errorf("a fresh procfs or sysfs could be mounted under --no-pivot: %q", r.stdout)
	}
	if strings.Count(r.stderr, "ermission denied") != 2 {
		t.Errorf("want both mounts refused with permission denied, stderr %q", r.stderr)
	}
}
