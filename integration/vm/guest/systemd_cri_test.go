package guest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/cgroups"
)

const criSock = "unix:///run/containerd/containerd.sock"

// crictl runs crictl against the guest's containerd.
func crictl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crictl", append([]string{"--runtime-endpoint", criSock, "--timeout", "30s"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), err
}

func mustCrictl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := crictl(t, args...)
	if err != nil {
		t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// startContainerd runs the guest's containerd (config from the host side: berth the default
// handler, SystemdCgroup = true) and imports the two images.
func startContainerd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd and crictl are not in this guest (the host has no containerd or no /var/cache/berth-cri/bin/crictl)")
	}
	logf, err := os.Create("/tmp/containerd.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", "/etc/containerd/config.toml")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile("/tmp/containerd.log")
			t.Logf("containerd.log (last lines):\n%s", lastLines(string(log), 30))
		}
	})
	if !waitFor(60*time.Second, func() bool { _, err := crictl(t, "info"); return err == nil }) {
		t.Fatal("containerd's CRI did not answer within 60s")
	}
	for _, img := range []string{"/cri/pause.tar", "/cri/busybox.tar"} {
		if out, err := exec.Command("ctr", "-n", "k8s.io", "images", "import", img).CombinedOutput(); err != nil {
			t.Fatalf("ctr images import %s: %v\n%s", img, err, out)
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// A pod as the kubelet with the systemd driver makes it, through containerd's CRI with berth
// as the handler and SystemdCgroup = true: each container is a scope in the pod's slice with
// its limits in the unit and the files; exec, logs and update work; stop and remove leave no
// unit behind.
func TestSystemdCRI(t *testing.T) {
	needSystemd(t)
	startContainerd(t)
	dir := t.TempDir()
	pod := filepath.Join(dir, "pod.json")
	ctr := filepath.Join(dir, "ctr.json")
	os.WriteFile(pod, []byte(fmt.Sprintf(`{"metadata": {"name": "sdpod", "namespace": "default", "uid": "sdpod-uid", "attempt": 0},
  "log_directory": %q,
  "linux": {"cgroup_parent": "berthvm-pod.slice", "security_context": {"namespace_options": {"network": 2}}}}`, dir)), 0o644)
	os.WriteFile(ctr, []byte(`{"metadata": {"name": "sdctr"}, "image": {"image": "docker.io/berth/busybox:1"},
  "command": ["sh", "-c", "echo hello-cri; trap 'exit 0' TERM; while :; do sleep 1; done"], "log_path": "sdctr.log",
  "linux": {"resources": {"memory_limit_in_bytes": 67108864, "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
    "cpuset_cpus": "0", "cpuset_mems": "0", "unified": {"memory.high": "50331648"}}}}`), 0o644)

	podID := mustCrictl(t, "runp", pod)
	t.Cleanup(func() { crictl(t, "stopp", podID); crictl(t, "rmp", "-f", podID) })
	sandboxUnit := "cri-containerd-" + podID + ".scope"
	expectProps(t, sandboxUnit, map[string]string{"ActiveState": "active", "Slice": "berthvm-pod.slice"})

	ctrID := mustCrictl(t, "create", podID, ctr, pod)
	mustCrictl(t, "start", ctrID)
	unit := "cri-containerd-" + ctrID + ".scope"
	path := "/berthvm.slice/berthvm-pod.slice/" + unit
	weight := strconv.FormatUint(cgroups.SharesToWeight(512), 10)
	expectProps(t, unit, map[string]string{
		"ActiveState": "active", "Slice": "berthvm-pod.slice", "ControlGroup": path, "Delegate": "yes",
		"MemoryMax": "67108864", "CPUWeight": weight, "CPUQuotaPerSecUSec": "500ms",
		"AllowedCPUs": "0", "AllowedMemoryNodes": "0", "MemoryHigh": "50331648",
	})
	expectFile(t, path, "memory.max", "67108864")
	expectFile(t, path, "cpu.max", "50000 100000")
	expectFile(t, path, "cpu.weight", weight)
	expectFile(t, path, "cpuset.cpus", "0")
	expectFile(t, path, "cpuset.mems", "0")
	expectFile(t, path, "memory.high", "50331648")

	if out := mustCrictl(t, "exec", "-s", ctrID, "cat", "/proc/self/cgroup"); !strings.HasPrefix(out, "0::") {
		t.Errorf("crictl exec: /proc/self/cgroup = %q", out)
	}
	if !waitFor(10*time.Second, func() bool { out, _ := crictl(t, "logs", ctrID); return strings.Contains(out, "hello-cri") }) {
		out, _ := crictl(t, "logs", ctrID)
		t.Errorf("crictl logs: %q, want hello-cri", out)
	}
	mustCrictl(t, "update", "--memory", "134217728", ctrID)
	expectProps(t, unit, map[string]string{"MemoryMax": "134217728"})
	expectFile(t, path, "memory.max", "134217728")

	mustCrictl(t, "stop", ctrID)
	mustCrictl(t, "rm", ctrID)
	expectProps(t, unit, map[string]string{"LoadState": "not-found"})
	if _, err := os.Stat(cgroupRoot + path); !os.IsNotExist(err) {
		t.Errorf("%s left after crictl rm (%v)", path, err)
	}
	mustCrictl(t, "stopp", podID)
	mustCrictl(t, "rmp", podID)
	expectProps(t, sandboxUnit, map[string]string{"LoadState": "not-found"})
}
