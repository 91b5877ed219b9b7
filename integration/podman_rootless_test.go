package integration

// berth under rootless podman: podman run by an ordinary user (setpriv, a subordinate range),
// its storage under the user's home (native overlay, mounted userxattr in podman's user
// namespace), the cgroupfs manager (on this cgroup v1 host a rootless podman runs without
// cgroups), no network, and berth as --runtime. podman calls berth inside its own user
// namespace, as root there, with XDG_RUNTIME_DIR set: berth keeps its state in
// $XDG_RUNTIME_DIR/berth.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type rlPodman struct {
	t   *testing.T
	u   *rlImageUser
	bin string // berth, named berth (containers.conf knows it takes --log-format=json)
}

func (p *rlPodman) run(args ...string) toolResult {
	p.t.Helper()
	full := append([]string{"--reuid", strconv.Itoa(p.u.uid), "--regid", strconv.Itoa(p.u.gid), "--init-groups",
		"env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + p.u.home, "USER=" + p.u.name,
		"XDG_RUNTIME_DIR=" + p.u.xdg, "CONTAINERS_CONF=" + filepath.Join(filepath.Dir(p.bin), "containers.conf"),
		"podman", "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime", p.bin}, args...)
	return runTool(p.t, nil, 120*time.Second, "setpriv", full...)
}

func (p *rlPodman) must(args ...string) toolResult {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("podman %s: %s", strings.Join(args, " "), r)
	}
	return r
}

func TestPodmanRootless(t *testing.T) {
	needTools(t, "podman", "conmon", "newuidmap")
	u := rlImageEnsureUser(t, "berth-rlimage", true, true)
	dir := filepath.Dir(u.home)
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &rlPodman{t: t, u: u, bin: filepath.Join(bin, "berth")}
	data, err := os.ReadFile(berthBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime_supports_json = [\"berth\"]\n"
	if err := os.WriteFile(filepath.Join(bin, "containers.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(bin, "busybox.tar")
	if data, err = os.ReadFile(compatArchive(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.run("rm", "--all", "--force", "--time", "0")
		p.run("rmi", "--all", "--force")
		// The pause process that holds podman's user namespace.
		if pid, err := os.ReadFile(filepath.Join(u.xdg, "libpod/tmp/pause.pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil && n > 1 {
				exec.Command("kill", "-9", strconv.Itoa(n)).Run()
			}
		}
	})
	p.must("load", "-i", archive)
	const image = "localhost/latest:latest"

	// A container to the end, its output and exit status; root of podman's namespace.
	r := p.run("run", "--rm", "--network", "none", image, "sh", "-c", "echo hello from berth; id -u; cat /proc/self/uid_map; exit 7")
	want := fmt.Sprintf("hello from berth\n0\n0 %d 1\n1 %d 65536\n", u.uid, u.subuid)
	if got := strings.Join(strings.Fields(r.stdout), " "); r.code != 7 || got != strings.Join(strings.Fields(want), " ") {
		t.Errorf("podman run: want exit 7 and %q, got %s", want, r)
	}

	// Detached, exec, stop, rm.
	const name = "rl-pod"
	r = p.must("run", "-d", "--network", "none", "--name", name, image,
		"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
	id := strings.TrimSpace(r.stdout)
	// podman ran berth: its state is in the user's $XDG_RUNTIME_DIR/berth.
	if _, err := os.Stat(filepath.Join(u.xdg, "berth", id, "state.json")); err != nil {
		t.Errorf("no berth state for %s under %s/berth: %v", id, u.xdg, err)
	}
	r = p.run("exec", name, "sh", "-c", "echo exec-out; readlink /proc/1/exe; exit 4")
	if r.code != 4 || !strings.Contains(r.stdout, "exec-out") || !strings.Contains(r.stdout, "/bin/busybox") {
		t.Errorf("podman exec: want exit 4, exec-out and pid 1 being busybox, got %s", r)
	}
	r = p.run("exec", "--user", "65534:65534", name, "id", "-u")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "65534" {
		t.Errorf("podman exec --user 65534: %s", r)
	}
	// Exit code 0: the shell's TERM trap ran (after --time, SIGKILL would give 137).
	p.must("stop", "--time", "30", name)
	r = p.must("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
	if got := strings.TrimSpace(r.stdout); got != "exited 0" {
		t.Errorf("after podman stop: %q, want exited 0", got)
	}
	p.must("rm", name)
	if _, err := os.Stat(filepath.Join(u.xdg, "berth", id)); err == nil {
		t.Errorf("berth state of %s left after podman rm", id)
	}
}
