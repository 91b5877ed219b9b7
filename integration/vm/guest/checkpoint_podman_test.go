package guest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The podman round trip: podman 4.3 (Debian's, with conmon) checkpoints a container with the
// runtime under test (`--runtime`), exports the checkpoint, and restores the export into a
// new container (`restore --import --name`); conmon runs the runtime's `restore`.

// podmanConf is what podman needs in a guest that has nothing of its own: storage on the
// guest's tmpfs, the cgroupfs manager (no systemd), events to a file, any image accepted.
var podmanConf = map[string]string{
	"/etc/containers/policy.json": `{"default": [{"type": "insecureAcceptAnything"}]}`,
	"/etc/containers/storage.conf": `[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
`,
	"/etc/containers/containers.conf": `[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["/usr/bin/conmon"]
[containers]
netns = "none"
`,
}

// podman runs podman with the runtime bin.
func podman(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", append([]string{"--runtime", bin}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustPodman(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := podman(t, bin, args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// setupPodman writes podman's configuration, loads the busybox image and returns its id.
func setupPodman(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not in this guest (TestCheckpointInVM's has it)")
	}
	if err := os.MkdirAll("/var/tmp", 0o1777); err != nil {
		t.Fatal(err)
	}
	for name, body := range podmanConf {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runc, _ := exec.LookPath("runc")
	mustPodman(t, runc, "load", "-i", "/ctr/busybox.tar")
	ids := strings.Fields(mustPodman(t, runc, "images", "-q"))
	if len(ids) != 1 {
		t.Fatalf("podman images after the load: %q", ids)
	}
	return ids[0]
}

// A counter run by podman with the runtime under test is checkpointed and exported, and the
// export is restored into a new container: the counter (stopped at a known count by its gate
// file) goes on with exactly the next numbers, in the new container's cgroup with the memory
// limit of the original.
func TestCheckpointPodman(t *testing.T) {
	needCriu(t)
	image := setupPodman(t)
	forEachRuntime(t, func(t *testing.T, bin string) {
		rt := filepath.Base(bin)
		name, name2 := "pm-"+rt, "pm-"+rt+"-restored"
		out := t.TempDir()
		if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { podman(t, bin, "rm", "-f", name, name2) })
		mustPodman(t, bin, "run", "-d", "--name", name, "--memory", "64m", "-v", out+":/out",
			image, "sh", "-c", gatedCounter)
		if !waitFor(time.Minute, func() bool { n, _ := lastCount(t, out); return n >= 3 }) {
			t.Fatal("the counter did not reach 3 within a minute")
		}
		os.Remove(filepath.Join(out, "go"))
		if !waitFor(time.Minute, func() bool { _, err := os.Stat(filepath.Join(out, "idle")); return err == nil }) {
			t.Fatal("the counter did not go idle within a minute")
		}
		last, _ := lastCount(t, out)
		id := mustPodman(t, bin, "inspect", "-f", "{{.Id}}", name)

		export := filepath.Join(t.TempDir(), "checkpoint.tar")
		mustPodman(t, bin, "container", "checkpoint", "--compress", "none", "--export", export, name)
		if st := mustPodman(t, bin, "inspect", "-f", "{{.State.Status}}", name); st != "exited" {
			t.Errorf("after the checkpoint, the original is %q, want exited", st)
		}
		mustPodman(t, bin, "container", "restore", "--import", export, "--name", name2)
		if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var got []int
		waitFor(time.Minute, func() bool {
			data, _ := os.ReadFile(filepath.Join(out, "count"))
			got = nil
			for _, f := range strings.Fields(string(data)) {
				n, _ := strconv.Atoi(f)
				got = append(got, n)
			}
			return len(got) >= last+2
		})
		if len(got) < last+2 || got[last] != last+1 || got[last+1] != last+2 {
			t.Fatalf("count file after the restore: %v; want 1..%d then %d, %d", got, last, last+1, last+2)
		}
		t.Logf("the counter stopped at %d before the checkpoint, the restored one went on with %d, %d", last, got[last], got[last+1])

		if r := mustPodman(t, bin, "inspect", "-f", "{{.OCIRuntime}}", name2); r != bin {
			t.Errorf("the restored container's runtime is %q, want %s", r, bin)
		}
		pid, _ := strconv.Atoi(mustPodman(t, bin, "inspect", "-f", "{{.State.Pid}}", name2))
		id2 := mustPodman(t, bin, "inspect", "-f", "{{.Id}}", name2)
		expectRestoredCgroup(t, bin, pid, "/libpod_parent/libpod-"+id2, "/libpod_parent/libpod-"+id,
			map[string]string{"memory.max": "67108864"})
	})
}
