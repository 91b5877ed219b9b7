package guest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The engine round trip: containerd 1.6 (Debian's, with its runc shim) checkpoints a
// container's task into an image in its content store and restores it live into a new
// container, with berth (and, as the reference, runc) as the shim's runtime binary: the shim
// runs `checkpoint` (a paused task, --leave-running) and `restore --detach --no-subreaper`.

const ctrSock = "/run/containerd-ckpt/containerd.sock"

// ctrConfig is a containerd without the CRI plugin, on the guest's tmpfs.
const ctrConfig = `version = 2
root = "/var/lib/containerd-ckpt"
state = "/run/containerd-ckpt"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "` + ctrSock + `"
`

// ctr runs ctr against the guest's containerd, in namespace ckpt.
func ctr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", ctrSock, "-n", "ckpt"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ctr(t, args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// startCkptContainerd runs containerd for the round trip and imports the busybox image.
func startCkptContainerd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not in this guest (TestCheckpointInVM's has it)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(ctrConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("containerd.log (last lines):\n%s", lastLines(string(log), 40))
		}
	})
	if !waitFor(time.Minute, func() bool { _, err := ctr(t, "version"); return err == nil }) {
		t.Fatal("containerd did not answer within a minute")
	}
	mustCtr(t, "images", "import", "/ctr/busybox.tar")
}

// gatedCounter counts while /out/go exists, appending each number to /out/count; without
// /out/go it writes its count to /out/idle. The test stops it there, so that the count at
// the dump is known exactly although containerd resumes the task after its checkpoint.
const gatedCounter = `i=0; while :; do if [ -e /out/go ]; then i=$((i+1)); echo $i >> /out/count; else echo $i > /out/idle; fi; sleep 0.2; done`

// lastCount reads the last number of dir/count (0 when none), and how many lines it has.
func lastCount(t *testing.T, dir string) (last, lines int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "count"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, 0
	}
	last, _ = strconv.Atoi(f[len(f)-1])
	return last, len(f)
}

// A counter run by containerd with the runtime under test is checkpointed with
// `ctr containers checkpoint --task` and restored with `ctr containers restore --live` into a
// new container (the original killed and removed in between); the restored counter goes on
// from the count at the dump, its task is the runtime's (its state read back with the runtime
// under the shim's root), in the cgroup its config names (containerd restores the original's
// spec, cgroupsPath included), with the memory limit of the original.
func TestCheckpointContainerd(t *testing.T) {
	needCriu(t)
	startCkptContainerd(t)
	forEachRuntime(t, func(t *testing.T, bin string) {
		rt := filepath.Base(bin)
		id, id2 := "ctr-"+rt, "ctr-"+rt+"-restored"
		ref := "docker.io/berth/checkpoint-" + rt + ":1"
		out := t.TempDir()
		if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, c := range []string{id, id2} {
				ctr(t, "tasks", "kill", "-s", "SIGKILL", c)
				waitFor(30*time.Second, func() bool { _, err := ctr(t, "tasks", "delete", c); return err != nil })
				ctr(t, "containers", "delete", c)
			}
		})
		mustCtr(t, "run", "-d", "--runc-binary", bin, "--memory-limit", "67108864",
			"--mount", "type=bind,src="+out+",dst=/out,options=rbind:rw",
			"docker.io/berth/busybox:1", id, "sh", "-c", gatedCounter)
		if !waitFor(time.Minute, func() bool { n, _ := lastCount(t, out); return n >= 3 }) {
			t.Fatalf("the counter did not reach 3 within a minute: %s", ctrTaskList(t))
		}
		// Stop the count: once /out/idle appears, the count is final.
		os.Remove(filepath.Join(out, "go"))
		idle := filepath.Join(out, "idle")
		if !waitFor(time.Minute, func() bool { _, err := os.Stat(idle); return err == nil }) {
			t.Fatal("the counter did not go idle within a minute")
		}
		last, _ := lastCount(t, out)

		mustCtr(t, "containers", "checkpoint", "--task", id, ref)
		t.Logf("ctr images ls: %s", mustCtr(t, "images", "ls", "-q"))
		if s := ctrTaskStatus(t, id); s != "RUNNING" {
			t.Errorf("after the checkpoint, the original's task is %s, want RUNNING (containerd leaves it running)", s)
		}
		mustCtr(t, "tasks", "kill", "-s", "SIGKILL", id)
		if !waitFor(time.Minute, func() bool { return ctrTaskStatus(t, id) == "STOPPED" }) {
			t.Fatalf("the original did not stop: %s", ctrTaskList(t))
		}
		mustCtr(t, "tasks", "delete", id)
		mustCtr(t, "containers", "delete", id)

		mustCtr(t, "containers", "restore", "--live", id2, ref)
		if s := ctrTaskStatus(t, id2); s != "RUNNING" {
			t.Fatalf("the restored task is %q, want RUNNING: %s", s, ctrTaskList(t))
		}
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

		// The runtime that restored it is the one given (its state, under the shim's root:
		// /run/containerd/runc/NAMESPACE whatever containerd's own state directory).
		root := "/run/containerd/runc/ckpt"
		e := &env{t: t, root: root, bin: bin}
		s := e.ociState(id2)
		if s == nil || s.Status != "running" {
			r := e.berth("state", id2)
			t.Fatalf("%s state %s under %s: %+v (%s%s)", rt, id2, root, s, r.stdout, r.stderr)
		}
		// containerd restores the checkpoint's spec as it was, cgroupsPath included: the new
		// container's group is the original's path, made again.
		var spec specs.Spec
		data, err := os.ReadFile("/run/containerd-ckpt/io.containerd.runtime.v2.task/ckpt/" + id2 + "/config.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		t.Logf("the restored container's config names the cgroup %s", spec.Linux.CgroupsPath)
		expectRestoredCgroup(t, bin, s.Pid, spec.Linux.CgroupsPath, "/ckpt/"+id, map[string]string{"memory.max": "67108864"})
	})
}

// ctrTaskStatus is a task's STATUS column in `ctr tasks ls` ("" when it has no task).
func ctrTaskStatus(t *testing.T, id string) string {
	t.Helper()
	out, _ := ctr(t, "tasks", "ls")
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

func ctrTaskList(t *testing.T) string {
	out, _ := ctr(t, "tasks", "ls")
	return out
}
