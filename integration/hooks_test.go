package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
		{"createRuntime fails", specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 3"}}}}, "hooks.createRuntime[0] (/bin/sh): exit status 3: nope"},
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
