package integration

// berth under podman (the Debian package, through conmon): podman with its own storage
// (--root, --runroot, --tmpdir), the cgroupfs manager, the file events backend, no network,
// and berth (behind the argv-recording wrapper) as --runtime.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/libcontainer"
)

type podman struct {
	t       *testing.T
	dir     string
	env     []string
	flags   []string
	wrapper string
	argv    string
	image   string
}

func startPodman(t *testing.T) *podman {
	t.Helper()
	needTools(t, "podman", "conmon")
	archive := compatArchive(t)
	dir := t.TempDir()
	p := &podman{t: t, dir: dir, image: "localhost/pod-busybox:latest"}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Named berth: containers.conf says it takes --log-format=json as it does for runc.
	p.wrapper, p.argv = installArgvWrapper(t, bin, "berth")
	// As root, podman gives containers RLIMIT_NOFILE 1048576 and an RLIMIT_NPROC above the
	// one it sets for itself: raising a hard limit needs CAP_SYS_RESOURCE, which a sandboxed
	// root may not have (runc then fails as berth does). Limits any root can set:
	conf := `[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["berth"]
`
	confPath := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.env = []string{"CONTAINERS_CONF=" + confPath}
	p.flags = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
		"--events-backend", "file", "--runtime", p.wrapper}
	t.Cleanup(p.stop)
	p.must("load", "-i", archive)
	p.must("tag", "localhost/latest:latest", p.image)
	return p
}

func (p *podman) with(t *testing.T) *podman {
	pp := *p
	pp.t = t
	return &pp
}

func (p *podman) run(args ...string) toolResult {
	p.t.Helper()
	return runTool(p.t, p.env, 60*time.Second, "podman", append(append([]string{}, p.flags...), args...)...)
}

func (p *podman) must(args ...string) toolResult {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("podman %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// inspect returns one field of podman inspect (a Go template).
func (p *podman) inspect(name, format string) string {
	p.t.Helper()
	return strings.TrimSpace(p.must("inspect", "--format", format, name).stdout)
}

func (p *podman) stop() {
	p.run("rm", "--all", "--force", "--time", "0")
	p.run("rmi", "--all", "--force")
	unmountUnder(p.dir)
	// cgroupfs: containers under /libpod_parent/libpod-<id>, conmon in /libpod_parent/conmon.
	rmdirCgroups("libpod_parent/conmon", "libpod_parent")
}

// podmanBerthState asks berth about a podman container; podman gives berth no --root, so the
// default root is used.
func podmanBerthState(id string) (libcontainer.OCIState, error) {
	var s libcontainer.OCIState
	out, err := exec.Command(berthBin, "state", id).CombinedOutput()
	if err != nil {
		return s, fmt.Errorf("berth state %s: %v: %s", id, err, out)
	}
	return s, json.Unmarshal(out, &s)
}

func TestPodman(t *testing.T) {
	p := startPodman(t)

	t.Run("run-output-and-exit-status", func(t *testing.T) {
		p := p.with(t)
		r := p.run("run", "--rm", "--network", "none", "--name", "pod-run", p.image,
			"sh", "-c", "echo hello from berth; ulimit -n; exit 7")
		if r.code != 7 || !strings.Contains(r.stdout, "hello from berth") || !strings.Contains(r.stdout, "4096") {
			t.Errorf("podman run: want exit 7, the output and the nofile limit 4096, got %s", r)
		}
	})

	t.Run("detached-exec-pause-stop-rm", func(t *testing.T) {
		p := p.with(t)
		const name = "pod-det"
		// The shell exits on SIGTERM (as pid 1 it would otherwise ignore it).
		r := p.must("run", "-d", "--network", "none", "--name", name, p.image,
			"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
		id := strings.TrimSpace(r.stdout)
		if st := p.inspect(name, "{{.State.Status}}"); st != "running" {
			t.Fatalf("after podman run -d: %q, want running", st)
		}
		pid := p.inspect(name, "{{.State.Pid}}")
		if s, err := podmanBerthState(id); err != nil || s.Status != "running" || fmt.Sprint(s.Pid) != pid {
			t.Errorf("berth state %s: %+v, %v; want running with pid %s", id, s, err, pid)
		}

		r = p.run("exec", name, "sh", "-c", "echo exec-out; readlink /proc/1/exe; exit 4")
		if r.code != 4 || !strings.Contains(r.stdout, "exec-out") || !strings.Contains(r.stdout, "/bin/busybox") {
			t.Errorf("podman exec: want exit 4, exec-out and pid 1 being busybox, got %s", r)
		}
		r = p.run("exec", "--user", "65534:65534", "--workdir", "/tmp", "--env", "FOO=bar", name,
			"sh", "-c", "id -u; id -g; pwd; echo $FOO")
		if r.code != 0 || strings.Fields(r.stdout) == nil || strings.Join(strings.Fields(r.stdout), " ") != "65534 65534 /tmp bar" {
			t.Errorf("podman exec --user --workdir --env: want 65534 65534 /tmp bar, got %s", r)
		}
		r = p.run("exec", "-t", name, "tty")
		if r.code != 0 || !strings.Contains(r.stdout, "/dev/pts/") {
			t.Errorf("podman exec -t: want a pty, got %s", r)
		}

		p.must("pause", name)
		if st := p.inspect(name, "{{.State.Status}}"); st != "paused" {
			t.Errorf("after podman pause: %q, want paused", st)
		}
		if s, err := podmanBerthState(id); err != nil || s.Status != "paused" {
			t.Errorf("berth state after pause: %+v, %v", s, err)
		}
		p.must("unpause", name)
		if st := p.inspect(name, "{{.State.Status}}"); st != "running" {
			t.Errorf("after podman unpause: %q, want running", st)
		}

		start := time.Now()
		p.must("stop", "--time", "10", name)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("podman stop took %v: SIGTERM did not reach the container", d)
		}
		if st, code := p.inspect(name, "{{.State.Status}}"), p.inspect(name, "{{.State.ExitCode}}"); st != "exited" || code != "0" {
			t.Errorf("after podman stop: %s with exit code %s, want exited 0", st, code)
		}
		p.must("rm", name)
		if _, err := podmanBerthState(id); err == nil {
			t.Errorf("%s still known to berth after podman rm", id)
		}
	})

	t.Run("kill-exit-status", func(t *testing.T) {
		p := p.with(t)
		const name = "pod-kill"
		p.must("run", "-d", "--network", "none", "--name", name, p.image, "sleep", "1000")
		p.must("kill", name)
		r := p.must("wait", name)
		if strings.TrimSpace(r.stdout) != "137" {
			t.Errorf("podman wait after podman kill (SIGKILL): %q, want 137", r.stdout)
		}
		p.must("rm", name)
	})

	t.Run("user", func(t *testing.T) {
		p := p.with(t)
		r := p.run("run", "--rm", "--network", "none", "--user", "65534:65534", p.image, "id")
		if r.code != 0 || !strings.Contains(r.stdout, "uid=65534(nobody) gid=65534(nogroup)") {
			t.Errorf("podman run --user 65534:65534: %s", r)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		p := p.with(t)
		// Without the tmpfs podman adds by default: the rootfs alone.
		r := p.run("run", "--rm", "--network", "none", "--read-only", "--read-only-tmpfs=false", p.image,
			"sh", "-c", "touch /x 2>/dev/null && echo writable || echo read-only")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "read-only" {
			t.Errorf("podman run --read-only --read-only-tmpfs=false: %s", r)
		}
		// The default: tmpfs on /run, /tmp and /var/tmp with runc's "tmpcopyup" option.
		r = p.run("run", "--rm", "--network", "none", "--read-only", p.image,
			"sh", "-c", "touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/y && echo tmp-ok")
		if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "read-only tmp-ok" {
			hint := ""
			if strings.Contains(r.stderr, "mount -t tmpfs: invalid argument") {
				hint = "\n(berth bug: the tmpfs mounts have runc's \"tmpcopyup\" option, which berth hands to mount(2) as tmpfs data instead of copying the directory's content up into the new tmpfs as runc does)"
			}
			t.Errorf("podman run --read-only: want a read-only rootfs and a writable /tmp, got %s%s", r, hint)
		}
	})

	t.Run("tty-run", func(t *testing.T) {
		p := p.with(t)
		// -t: conmon passes create a --console-socket and relays the pty master it receives.
		r := p.run("run", "--rm", "-t", "--network", "none", p.image, "sh", "-c", "tty; exit 3")
		if r.code != 3 || !strings.Contains(r.stdout, "/dev/pts/") {
			t.Errorf("podman run -t: want a pty and exit 3, got %s", r)
		}
	})

	t.Run("preserve-fds", func(t *testing.T) {
		p := p.with(t)
		f, err := os.Create(filepath.Join(t.TempDir(), "preserved-fd-marker"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// conmon passes create --preserve-fds 1: the caller's fd 3 reaches the container.
		cmd := exec.Command("podman", append(append([]string{}, p.flags...), "run", "--rm", "--network", "none",
			"--preserve-fds", "1", p.image, "readlink", "/proc/self/fd/3")...)
		cmd.Env = append(os.Environ(), p.env...)
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "preserved-fd-marker") {
			t.Errorf("podman run --preserve-fds 1: %v\n%s", err, out)
		}
	})

	t.Run("update", func(t *testing.T) {
		p := p.with(t)
		const name = "pod-update"
		p.must("run", "-d", "--network", "none", "--name", name, p.image, "sleep", "1000")
		defer p.run("rm", "--force", "--time", "0", name)
		// podman writes a LinuxResources JSON file and calls update --resources=FILE.
		p.must("update", "--memory", "32m", "--cpu-shares", "512", name)
		r := p.must("exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.shares")
		if got := strings.Join(strings.Fields(r.stdout), " "); got != "33554432 512" {
			t.Errorf("after podman update --memory 32m --cpu-shares 512: %q", got)
		}
	})

	t.Run("memory-limit", func(t *testing.T) {
		p := p.with(t)
		r := p.run("run", "--rm", "--network", "none", "--memory", "64m", p.image,
			"cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "67108864" {
			t.Errorf("podman run --memory 64m: %s", r)
		}
	})

	t.Run("missing-program", func(t *testing.T) {
		p := p.with(t)
		// podman maps the runtime's "no such file or directory" to exit status 127.
		r := p.run("run", "--rm", "--network", "none", p.image, "/no/such/program")
		if r.code != 127 {
			t.Errorf("podman run of a missing program: want exit 127, got %s", r)
		}
	})

	t.Run("info", func(t *testing.T) {
		p := p.with(t)
		// podman info runs `<runtime> --version` and shows its first line.
		v := strings.TrimSpace(p.must("info", "--format", "{{.Host.OCIRuntime.Version}}").stdout)
		if !strings.HasPrefix(v, "runc version ") && !strings.Contains(v, "berth") {
			t.Errorf("podman info: OCI runtime version %q", v)
		}
	})

	use := logArgv(t, "podman and conmon", readArgv(t, p.argv))
	if allSubtests() {
		for _, cmd := range []string{"create", "start", "exec", "pause", "resume", "update", "kill", "delete"} {
			if use[cmd] == nil {
				t.Errorf("podman never called berth %s", cmd)
			}
		}
	}
}
