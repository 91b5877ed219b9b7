package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// specBy runs `<bin> spec [args]` in a new directory and returns the config.json it wrote.
func specBy(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, append([]string{"spec"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s spec %v: %v: %s", bin, args, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// jsonDiff lists the paths at which two JSON documents differ.
func jsonDiff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var out []string
		for k := range keys {
			out = append(out, jsonDiff(path+"."+k, am[k], bm[k])...)
		}
		sort.Strings(out)
		return out
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		return []string{fmt.Sprintf("%s: berth %s, runc %s", path, ja, jb)}
	}
	return nil
}

// `berth spec` and `berth spec --rootless` write what runc 1.1.5 writes, byte for byte: runc's
// suite builds every bundle from `$RUNC spec` and adds its own namespaces and mounts on top.
func TestSpecIsRuncs(t *testing.T) {
	needTools(t, "runc")
	for _, args := range [][]string{nil, {"--rootless"}} {
		mine, theirs := specBy(t, berthBin, args...), specBy(t, "runc", args...)
		var m, r any
		if err := json.Unmarshal(mine, &m); err != nil {
			t.Fatalf("berth spec %v: %v", args, err)
		}
		if err := json.Unmarshal(theirs, &r); err != nil {
			t.Fatal(err)
		}
		for _, d := range jsonDiff("", m, r) {
			t.Errorf("spec %v: %s", args, d)
		}
		if !bytes.Equal(mine, theirs) {
			t.Errorf("spec %v: the files differ byte for byte (layout)", args)
		}
	}
	// As runc: an existing config.json is kept, with runc's words.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	out, err := exec.Command(berthBin, "spec", "--bundle", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "File config.json exists. Remove it first") {
		t.Errorf("spec over an existing config.json: %v %s", err, out)
	}
}

// A container from a `berth spec` bundle, with a cgroup namespace added as runc's suite adds
// it, starts (no namespace listed twice); without one, an exec'd process sees the
// container's own cgroup path in every hierarchy, as the init does.
func TestSpecBundleCgroups(t *testing.T) {
	bundle := t.TempDir()
	cmd := exec.Command(berthBin, "spec")
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("berth spec: %v: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	data, _ := os.ReadFile(path)
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["process"].(map[string]any)["terminal"] = false
	cfg["process"].(map[string]any)["args"] = []string{"sleep", "100"}
	cfg["root"].(map[string]any)["path"] = rootfs
	linux := cfg["linux"].(map[string]any)
	linux["cgroupsPath"] = "/berth-test-spec/sc1"
	write := func() {
		data, _ := json.Marshal(cfg)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write()
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(func() {
		e.cleanup()
		removeTestGroups("berth-test-spec")
	})
	e.mustBerth("run", "-d", "--bundle", bundle, "sc1")
	r := e.mustBerth("exec", "sc1", "cat", "/proc/self/cgroup")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 2 {
		t.Fatalf("exec's /proc/self/cgroup: %q", r.stdout)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ":/berth-test-spec/sc1") {
			t.Errorf("exec'd process outside the container's group: %q", l)
		}
	}
	e.mustBerth("delete", "--force", "sc1")

	linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "cgroup"})
	write()
	e.mustBerth("run", "-d", "--bundle", bundle, "sc2")
	r = e.mustBerth("exec", "sc2", "cat", "/proc/self/cgroup")
	if !strings.Contains(r.stdout, ":/\n") {
		t.Errorf("with a cgroup namespace, exec sees %q", r.stdout)
	}
	e.mustBerth("delete", "--force", "sc2")
}

// removeTestGroups removes the (empty) group name at the top of every cgroup hierarchy.
func removeTestGroups(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	if d := filepath.Join("/sys/fs/cgroup", name); isDir(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		os.Remove(d)
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
