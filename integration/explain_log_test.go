package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Called as containerd's shim calls a runtime (--log FILE --log-format json), --explain writes
// its steps to the log file as JSON lines, and nothing to stderr, which for `create` is the
// container's own (docs/kubernetes.md: how to read a pod's narration).
func TestExplainToJSONLogFile(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo out")
	e.writeSpec()
	log := filepath.Join(t.TempDir(), "log.json")
	r := e.berth("--explain", "--log", log, "--log-format", "json", "run", "--bundle", e.bundle, "xl")
	if r.code != 0 || r.stdout != "out\n" || r.stderr != "" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		steps[m["step"]] = true
	}
	for _, want := range []string{"libcontainer.startInit", "rootfs.pivotRoot", "libcontainer.execUser"} {
		if !steps[want] {
			t.Errorf("log file has no step %s:\n%s", want, data)
		}
	}
}

// Under containerd (docs/kubernetes.md): a runtime binary that adds --explain to every call
// leaves the narration of the container in the shim's log.json, in the task's bundle
// directory, and the container's own output stays clean.
func TestContainerdExplainLog(t *testing.T) {
	c := startContainerd(t)
	wrapper := filepath.Join(c.dir, "bin", "berth-explain")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec '"+berthBin+"' --explain \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const id = "ctrd-explain"
	c.must("run", "--runc-binary", wrapper, "--runc-root", c.runcRoot, "--fifo-dir", c.fifoDir(), "-d", c.image, id, "sleep", "100")
	log := filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", c.ns, id, "log.json")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			if s, ok := m["step"].(string); ok {
				steps[s] = true
			}
		}
	}
	for _, want := range []string{"libcontainer.startInit", "rootfs.pivotRoot", "cgroups.writeFile"} {
		if !steps[want] {
			t.Errorf("%s has no step %s:\n%s", log, want, data)
		}
	}
	c.must("task", "delete", "--force", id)
	c.must("containers", "delete", id)
}
