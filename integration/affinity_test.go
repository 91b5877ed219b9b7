package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// berth pins itself to one CPU while its Go runtime starts, and gives every thread its
// affinity back before any of its code runs (libcontainer/nsenter). Nothing berth starts may
// inherit the pin: the container's init on both init paths, a hook, and a process berth exec
// starts all have the CPUs berth was started with, all of them or one.
func TestAffinityNotPinned(t *testing.T) {
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Skip(err)
	}
	all, err := parseCPUList(strings.TrimSpace(string(online)))
	if err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		t.Skip("one CPU: a pinned process could not be told apart")
	}
	last := 0
	for c := 0; c < 1024; c++ {
		if all.IsSet(c) {
			last = c
		}
	}
	var one unix.CPUSet
	one.Set(last)
	probe := "grep Cpus_allowed_list /proc/self/status"
	for _, mask := range []struct {
		name string
		set  unix.CPUSet
	}{{"all", all}, {"one", one}} {
		want := "Cpus_allowed_list:\t" + cpuList(&mask.set)
		for _, path := range initPaths {
			t.Run(mask.name+"/"+path.name, func(t *testing.T) {
				hookOut := filepath.Join(t.TempDir(), "hook")
				e := newEnv(t, "sh", "-c", probe)
				e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh",
					Args: []string{"sh", "-c", probe + " > " + hookOut}, Env: []string{"PATH=/usr/bin:/bin"}}}}
				e.writeSpec()
				run := berthWithAffinity(t, e, &mask.set, path.env, "run", "--bundle", e.bundle, "aff-run")
				if run.code != 0 || strings.TrimSpace(run.stdout) != want {
					t.Errorf("container's init: exit %d, %q, want %q (stderr %s)", run.code, run.stdout, want, run.stderr)
				}
				if got, _ := os.ReadFile(hookOut); strings.TrimSpace(string(got)) != want {
					t.Errorf("createRuntime hook: %q, want %q", got, want)
				}
			})
		}
		t.Run(mask.name+"/exec", func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			e.writeSpec()
			if r := berthWithAffinity(t, e, &mask.set, "", "run", "-d", "--bundle", e.bundle, "aff-exec"); r.code != 0 {
				t.Fatalf("run -d: %d %s", r.code, r.stderr)
			}
			defer e.berth("delete", "-f", "aff-exec")
			r := berthWithAffinity(t, e, &mask.set, "", "exec", "aff-exec", "sh", "-c", probe)
			if r.code != 0 || strings.TrimSpace(r.stdout) != want {
				t.Errorf("exec: exit %d, %q, want %q (stderr %s)", r.code, r.stdout, want, r.stderr)
			}
		})
	}
}

// berthWithAffinity runs berth from a thread whose affinity is set: the process berth is
// started as inherits it, as from taskset.
func berthWithAffinity(t *testing.T, e *env, set *unix.CPUSet, extraEnv string, args ...string) result {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var saved unix.CPUSet
	if err := unix.SchedGetaffinity(0, &saved); err != nil {
		t.Fatal(err)
	}
	if err := unix.SchedSetaffinity(0, set); err != nil {
		t.Skipf("setting the test thread's affinity to %s: %v", cpuList(set), err)
	}
	defer unix.SchedSetaffinity(0, &saved)
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	if extraEnv != "" {
		cmd.Env = append(os.Environ(), extraEnv)
	}
	return e.berthCmd(cmd)
}

// parseCPUList reads the kernel's list format ("0-3,5").
func parseCPUList(s string) (unix.CPUSet, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return set, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return set, err
			}
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return set, nil
}

// cpuList writes a set in the kernel's list format.
func cpuList(set *unix.CPUSet) string {
	var parts []string
	for c := 0; c < 1024; c++ {
		if !set.IsSet(c) {
			continue
		}
		d := c
		for d+1 < 1024 && set.IsSet(d+1) {
			d++
		}
		if d == c {
			parts = append(parts, strconv.Itoa(c))
		} else {
			parts = append(parts, strconv.Itoa(c)+"-"+strconv.Itoa(d))
		}
		c = d
	}
	return strings.Join(parts, ",")
}
