package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// logHook is a hook that records its kind and the state it got in dir.
func logHook(path, dir, kind string) specs.Hook {
	return specs.Hook{Path: path, Args: []string{"sh", "-c", "cat > " + dir + "/" + kind + ".json; echo " + kind + " >> " + dir + "/order"},
		Env: []string{"PATH=/usr/bin:/bin"}}
}

// Every kind of hook runs at its point, in order, with the state on stdin.
func TestHooksRunInOrder(t *testing.T) {
	log := t.TempDir()
	os.Chmod(log, 0o777)
	e := newEnv(t, "true")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: log, Options: []string{"rbind", "rw"}})
	e.spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{logHook("/bin/sh", log, "prestart")},
		CreateRuntime:   []specs.Hook{logHook("/bin/sh", log, "createRuntime")},
		CreateContainer: []specs.Hook{logHook("/bin/sh", log, "createContainer")},
		// Runs inside the container, after pivot_root: busybox's sh, the log bound in.
		StartContainer: []specs.Hook{logHook("/bin/sh", "/hooklog", "startContainer")},
		Poststart:      []specs.Hook{logHook("/bin/sh", log, "poststart")},
		Poststop:       []specs.Hook{logHook("/bin/sh", log, "poststop")},
	}
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "hk-1")
	pid := e.state("hk-1").Pid
	e.mustBerth("start", "hk-1")
	e.waitStatus("hk-1", "stopped")
	e.mustBerth("delete", "hk-1")
	order, _ := os.ReadFile(filepath.Join(log, "order"))
	want := "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n"
	if string(order) != want {
		t.Fatalf("hooks ran %q, want %q", order, want)
	}
	for kind, status := range map[string]string{"prestart": "creating", "createRuntime": "creating", "createContainer": "creating", "poststart": "running", "poststop": "stopped"} {
		data, _ := os.ReadFile(filepath.Join(log, kind+".json"))
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil {
			t.Errorf("%s: state on stdin %q: %v", kind, data, err)
			continue
		}
		if st.ID != "hk-1" || string(st.Status) != status || st.Bundle != e.bundle {
			t.Errorf("%s: state %+v, want id hk-1, status %s", kind, st, status)
		}
		if status != "stopped" && st.Pid != pid {
			t.Errorf("%s: pid %d, want the init's %d", kind, st.Pid, pid)
		}
	}
}

// A failing or hanging hook fails the step and leaves nothing behind.
func TestFailingHooksAbortCleanly(t *testing.T) {
	one := 1
	for _, c := range []struct {
		name  string
		hooks specs.Hooks
		want  string
	}{
		{"createRuntime fails", specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 3"}}}}, "hooks.createRuntime[0] (/bin/sh): error running hook: exit status 3: nope"},
		{"createContainer times out", specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}}}, "hooks.createContainer[0] (/bin/sleep): timed out after 1s"},
		{"prestart missing", specs.Hooks{Prestart: []specs.Hook{{Path: "/no/such/hook"}}}, "hooks.prestart[0] (/no/such/hook)"},
		{"relative path", specs.Hooks{Poststop: []specs.Hook{{Path: "hook"}}}, "hooks.poststop[0].path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			h := c.hooks
			e.spec.Hooks = &h
			e.writeSpec()
			start := time.Now()
			r := e.berth("create", "--bundle", e.bundle, "hk-bad")
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q, want %q", r.code, r.stderr, c.want)
			}
			if time.Since(start) > 8*time.Second {
				t.Errorf("the hook's timeout was not enforced")
			}
			e.assertGone("hk-bad")
		})
	}
}

// A failing poststart or poststop hook only warns: the next hooks and the lifecycle go on.
func TestFailingPoststartPoststopOnlyWarn(t *testing.T) {
	log := t.TempDir()
	fail := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 1"}}
	e := newEnv(t, "true")
	e.spec.Hooks = &specs.Hooks{
		Poststart: []specs.Hook{fail, logHook("/bin/sh", log, "poststart")},
		Poststop:  []specs.Hook{fail, logHook("/bin/sh", log, "poststop")},
	}
	e.writeSpec()
	e.mustBerth("create", "--bundle", e.bundle, "hk-warn")
	r := e.mustBerth("start", "hk-warn")
	e.waitStatus("hk-warn", "stopped")
	r2 := e.mustBerth("delete", "hk-warn")
	if !strings.Contains(r.stderr, "hooks.poststart[0]") || !strings.Contains(r2.stderr, "hooks.poststop[0]") {
		t.Errorf("want warnings naming the failing hooks: start %q, delete %q", r.stderr, r2.stderr)
	}
	if order, _ := os.ReadFile(filepath.Join(log, "order")); string(order) != "poststart\npoststop\n" {
		t.Errorf("the hooks after the failing ones ran %q", order)
	}
	e.assertGone("hk-warn")
}

// editRuncSpec changes the config.json of a runcSpecBundle, kept as a generic map so that
// every field runc wrote stays as runc wrote it.
func editRuncSpec(t *testing.T, bundle string, edit func(cfg map[string]any)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if data, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Each kind of hook runs where runc 1.1.5 runs it, with the environment runc gives it when
// the hook has no env: the bundle and the caller's environment for prestart and
// createRuntime, the rootfs and process.env for createContainer (so that a hook can name
// the container's files by relative paths, as runc's hooks.bats does), process.cwd and
// process.env (with the HOME the runtime added) for startContainer, the caller's directory
// and environment for the poststart of start and the poststop of delete. A hook with env
// gets exactly that.
func TestHookWorkingDirAndEnvAsRunc(t *testing.T) {
	log := t.TempDir()
	os.Chmod(log, 0o777)
	bundle := runcSpecBundle(t, "true")
	record := func(dir, kind string) map[string]any {
		return map[string]any{"path": "/bin/sh", "args": []string{"sh", "-c",
			"readlink /proc/self/cwd > " + dir + "/" + kind + ".cwd; exec cat /proc/self/environ > " + dir + "/" + kind + ".env"}}
	}
	exact := record(log, "exactEnv")
	exact["env"] = []string{"PATH=/usr/bin:/bin", "ONLY=1"}
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		proc := cfg["process"].(map[string]any)
		proc["cwd"] = "/tmp"
		proc["env"] = append(proc["env"].([]any), "FROM_PROCESS=1")
		cfg["mounts"] = append(cfg["mounts"].([]any), map[string]any{
			"destination": "/hooklog", "type": "bind", "source": log, "options": []string{"rbind", "rw"}})
		cfg["hooks"] = map[string]any{
			"prestart":        []any{record(log, "prestart")},
			"createRuntime":   []any{record(log, "createRuntime")},
			"createContainer": []any{record(log, "createContainer")},
			"startContainer":  []any{record("/hooklog", "startContainer")},
			"poststart":       []any{record(log, "poststart")},
			"poststop":        []any{record(log, "poststop"), exact},
		}
	})
	e := newEnv(t)
	caller := t.TempDir()
	berth := func(args ...string) {
		t.Helper()
		cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
		cmd.Dir = caller
		cmd.Env = append(os.Environ(), "BERTH_CALLER_MARK=1")
		if r := e.berthCmd(cmd); r.code != 0 {
			t.Fatalf("berth %v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	berth("create", "--bundle", bundle, "hk-place")
	berth("start", "hk-place")
	e.waitStatus("hk-place", "stopped")
	berth("delete", "hk-place")

	read := func(kind, ext string) string {
		data, err := os.ReadFile(filepath.Join(log, kind+"."+ext))
		if err != nil {
			t.Errorf("%s hook did not run: %v", kind, err)
		}
		var keep []string
		for _, l := range strings.Split(string(data), "\x00") {
			// The shell exports PWD itself.
			if l != "" && !strings.HasPrefix(l, "PWD=") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	for kind, dir := range map[string]string{"prestart": bundle, "createRuntime": bundle, "createContainer": rootfs,
		"startContainer": "/tmp", "poststart": caller, "poststop": caller} {
		if got := strings.TrimSpace(read(kind, "cwd")); got != dir {
			t.Errorf("%s hook ran in %q, want %q", kind, got, dir)
		}
		env := "\n" + read(kind, "env") + "\n"
		fromCaller := strings.Contains(env, "\nBERTH_CALLER_MARK=1\n")
		fromProcess := strings.Contains(env, "\nFROM_PROCESS=1\n")
		inContainer := kind == "createContainer" || kind == "startContainer"
		if fromCaller == inContainer || fromProcess != inContainer || strings.Contains(env, "_BERTH_") {
			t.Errorf("%s hook's environment: %q; want %s", kind, env, map[bool]string{true: "process.env", false: "the caller's"}[inContainer])
		}
		if kind == "startContainer" && !strings.Contains(env, "\nHOME=/root\n") {
			t.Errorf("startContainer hook's environment lacks the HOME runc adds: %q", env)
		}
	}
	if got := read("exactEnv", "env"); got != "PATH=/usr/bin:/bin\nONLY=1" {
		t.Errorf("a hook with env got %q", got)
	}

	// runc's run works from the bundle: the poststart and poststop hooks of a foreground run,
	// and the poststart of run -d, run there; the delete after run -d is the caller's.
	cwdOf := func(kind string) string { return strings.TrimSpace(read(kind, "cwd")) }
	berth("run", "--bundle", bundle, "hk-run")
	if p, s := cwdOf("poststart"), cwdOf("poststop"); p != bundle || s != bundle {
		t.Errorf("run: poststart ran in %q, poststop in %q; want the bundle %q", p, s, bundle)
	}
	berth("run", "--detach", "--bundle", bundle, "hk-rund")
	e.waitStatus("hk-rund", "stopped")
	berth("delete", "hk-rund")
	if p, s := cwdOf("poststart"), cwdOf("poststop"); p != bundle || s != caller {
		t.Errorf("run -d then delete: poststart ran in %q, poststop in %q; want %q and %q", p, s, bundle, caller)
	}
}

// The startContainer hook runs under the container's seccomp filter, as with runc: a profile
// that kills mkdir kills the hook's mkdir (runc's seccomp.bats, on a runc spec bundle).
func TestStartContainerHookUnderSeccomp(t *testing.T) {
	bundle := runcSpecBundle(t, "true")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		cfg["linux"].(map[string]any)["seccomp"] = map[string]any{
			"defaultAction": "SCMP_ACT_ALLOW", "architectures": []string{"SCMP_ARCH_X86", "SCMP_ARCH_X32"},
			"syscalls": []any{map[string]any{"names": []string{"mkdir", "mkdirat"}, "action": "SCMP_ACT_KILL"}},
		}
		cfg["hooks"] = map[string]any{"startContainer": []any{map[string]any{
			"path": "/bin/sh", "args": []string{"sh", "-c", "mkdir /tmp/from-hook"}}}}
	})
	e := newEnv(t)
	r := e.berth("run", "--bundle", bundle, "hk-seccomp")
	out := r.stdout + r.stderr
	if r.code == 0 || !strings.Contains(out, "error running hook") || !strings.Contains(out, syscall.SIGSYS.String()) {
		t.Errorf("exit %d, output %q: want the hook killed by SIGSYS (bad system call)", r.code, out)
	}
	e.assertGone("hk-seccomp")
}
