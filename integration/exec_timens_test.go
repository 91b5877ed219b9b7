package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// exec into containers whose namespaces are not all owned by the container's user namespace.
// Root's `berth create` unshares a new time namespace on its cloning thread, in the host's
// user namespace, to write the offsets before the init enters it; a pid namespace joined from
// the host belongs to the host's user namespace too. The exec'd process's constructor joined
// them after the container's user namespace, where it no longer had any privilege over them:
// setns failed with EPERM, after the pid namespace was joined, so the Go runtime could not
// start its threads to report it ("init process exited before it forked (exit status 2)").
// Each case runs a runc spec bundle and checks that exec works, that the exec'd process is in
// the init's namespaces (links read from the host), root there, and sees the clocks shifted.
func TestExecNamespacesOwnedOutsideUserNS(t *testing.T) {
	mappings := func(l map[string]any) {
		m := []any{map[string]any{"containerID": 0, "hostID": 100000, "size": 65536}}
		l["uidMappings"], l["gidMappings"] = m, m
	}
	offsets := func(l map[string]any) {
		l["timeOffsets"] = map[string]any{
			"monotonic": map[string]any{"secs": 1000, "nanosecs": 0},
			"boottime":  map[string]any{"secs": 1000, "nanosecs": 0},
		}
	}
	for _, c := range []struct {
		name string
		// add edits the config's linux section; pidHolder: join a pid namespace made from
		// the host (util-linux unshare) instead of a new one.
		add       func(l map[string]any)
		pidHolder bool
		userNS    bool
		timeNS    bool
	}{
		{"user and time", func(l map[string]any) {
			addNamespaces(l, "user", "time")
			mappings(l)
			offsets(l)
		}, false, true, true},
		{"time without user", func(l map[string]any) {
			addNamespaces(l, "time")
			offsets(l)
		}, false, false, true},
		{"user and a joined pid namespace", func(l map[string]any) {
			addNamespaces(l, "user")
			mappings(l)
		}, true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rf := t.TempDir()
			if err := copyTree(rootfs, rf); err != nil {
				t.Fatal(err)
			}
			if c.userNS {
				// The container's root (100000 on the host) must reach its rootfs.
				for _, d := range []string{rf, filepath.Dir(rf)} {
					if err := os.Chmod(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if out, err := exec.Command("chown", "-R", "100000:100000", rf).CombinedOutput(); err != nil {
					t.Fatalf("chown: %v: %s", err, out)
				}
			}
			bundle := runcSpecBundle(t, "sleep", "1000")
			detach := true
			editRuncSpec(t, bundle, func(cfg map[string]any) {
				cfg["root"].(map[string]any)["path"] = rf
				l := cfg["linux"].(map[string]any)
				c.add(l)
				if c.pidHolder {
					pid := holder(t, "-p", "-f")
					for _, ns := range l["namespaces"].([]any) {
						if ns.(map[string]any)["type"] == "pid" {
							ns.(map[string]any)["path"] = "/proc/" + pid + "/ns/pid"
						}
					}
					// The container's user namespace may not mount a procfs of a pid
					// namespace the host's owns (nor clone a mount of another mount
					// namespace): /proc is the host's, bound. And a foreground run: create's
					// exec fifo wants a procfs of its own.
					for _, m := range cfg["mounts"].([]any) {
						if m := m.(map[string]any); m["destination"] == "/proc" {
							m["type"], m["source"], m["options"] = "bind", "/proc", []any{"rbind"}
						}
					}
					detach = false
				}
			})
			e := &env{t: t, root: t.TempDir(), bundle: bundle}
			t.Cleanup(e.cleanup)
			const id = "ex-owned"
			if detach {
				e.mustBerth("run", "-d", "--bundle", bundle, id)
			} else {
				runForeground(t, e, id)
			}
			init := strconv.Itoa(e.state(id).Pid)

			// In the init's namespaces, as seen from the host.
			pidf := filepath.Join(t.TempDir(), "pid")
			e.mustBerth("exec", "--detach", "--pid-file", pidf, id, "sleep", "100")
			xpid := strings.TrimSpace(readTrim(t, pidf))
			types := []string{"pid", "mnt"}
			if c.userNS {
				types = append(types, "user")
			}
			if c.timeNS {
				types = append(types, "time")
			}
			for _, n := range types {
				if got, want := hostNs(t, xpid, n), hostNs(t, init, n); got != want {
					t.Errorf("%s: exec'd process in %s, the init in %s", n, got, want)
				}
			}
			if c.userNS {
				if got := statusIDs(t, xpid, "Uid:"); got != "100000" {
					t.Errorf("exec'd process's uid on the host: %s, want 100000 (root of the container)", got)
				}
			}

			host := hostUptime(t)
			r := e.berth("exec", id, "sh", "-c", "id -u; cat /proc/uptime")
			if r.code != 0 {
				t.Fatalf("exec: exit %d: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || lines[0] != "0" {
				t.Fatalf("exec printed %q: want uid 0, then /proc/uptime", r.stdout)
			}
			if c.timeNS {
				in, err := strconv.ParseFloat(strings.Fields(lines[1])[0], 64)
				if err != nil || in < host+900 {
					t.Errorf("uptime in the exec'd process %s, the host's before it %.2f: want about 1000 s more", lines[1], host)
				}
			}
			e.mustBerth("delete", "--force", id)
		})
	}
}

// A failure in the constructor after it unshared (or joined) a pid namespace, when the Go
// runtime cannot start anymore, is reported in the constructor's own words: a create that
// joins a user namespace makes its time namespace there, and writes offsets the kernel
// refuses (the monotonic clock would go below zero). It said "init process exited before it
// forked (exit status 2)".
func TestConstructorFailureAfterPidNS(t *testing.T) {
	pid := holder(t, "-U", "--map-root-user")
	bundle := runcSpecBundle(t, "true")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		l := cfg["linux"].(map[string]any)
		addNamespaces(l, "time")
		l["namespaces"] = append(l["namespaces"].([]any), map[string]any{"type": "user", "path": "/proc/" + pid + "/ns/user"})
		l["timeOffsets"] = map[string]any{"monotonic": map[string]any{"secs": -1000000000, "nanosecs": 0}}
	})
	e := &env{t: t, root: t.TempDir(), bundle: bundle}
	t.Cleanup(e.cleanup)
	r := e.berth("run", "--bundle", bundle, "ns-badoffs")
	oneLine(t, "run", r)
	if !strings.Contains(r.stderr, "linux.timeOffsets") || !strings.Contains(r.stderr, "out of range") {
		t.Errorf("run: exit %d, stderr %q: want the constructor's error naming linux.timeOffsets", r.code, r.stderr)
	}
	e.assertGone("ns-badoffs")
}

// addNamespaces adds new namespaces of the given types to a config's linux section.
func addNamespaces(l map[string]any, types ...string) {
	for _, ty := range types {
		l["namespaces"] = append(l["namespaces"].([]any), map[string]any{"type": ty})
	}
}

// runForeground starts `berth run` (no exec fifo) and waits until the container runs; the
// test's cleanup deletes it, which ends the run.
func runForeground(t *testing.T, e *env, id string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(berthBin, "--root", e.root, "run", "--bundle", e.bundle, id)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var runErr error
	done := make(chan struct{})
	go func() { runErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		exec.Command(berthBin, "--root", e.root, "delete", "--force", id).Run()
		<-done
	})
	for {
		select {
		case <-done:
			data, _ := os.ReadFile(out)
			t.Fatalf("run ended: %v: %s", runErr, data)
		default:
		}
		if st := e.berth("state", id); st.code == 0 && strings.Contains(st.stdout, `"running"`) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostUptime is the host's /proc/uptime, in seconds.
func hostUptime(t *testing.T) float64 {
	t.Helper()
	up, err := strconv.ParseFloat(strings.Fields(readTrim(t, "/proc/uptime"))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// statusIDs is the real id of a /proc/PID/status line ("Uid:" or "Gid:").
func statusIDs(t *testing.T, pid, field string) string {
	t.Helper()
	for _, l := range strings.Split(readTrim(t, "/proc/"+pid+"/status"), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.Fields(l)[1]
		}
	}
	t.Fatalf("no %s in /proc/%s/status", field, pid)
	return ""
}

// The same rule when a create joins them: a user namespace (which maps root) and a time
// namespace made from the host, which that user namespace does not own. The constructor
// joined the time namespace after the user namespace: "joining time namespace: operation not
// permitted".
func TestCreateJoinsUserAndHostTimeNS(t *testing.T) {
	user := holder(t, "-U", "--map-root-user")
	tns := holder(t, "-T", "--boottime", "1000", "--fork")
	e := newEnv(t, "sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time")
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces,
		specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/" + user + "/ns/user"},
		specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/" + tns + "/ns/time"})
	// The holder maps only root: devpts cannot be given the unmapped gid 5.
	for i, m := range e.spec.Mounts {
		if m.Type == "devpts" {
			var o []string
			for _, x := range m.Options {
				if x != "gid=5" {
					o = append(o, x)
				}
			}
			e.spec.Mounts[i].Options = o
		}
	}
	host := hostUptime(t)
	r := e.run("ns-usertime")
	if r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || lines[1] != hostNs(t, tns, "time") {
		t.Fatalf("inside: %q, want the holder's time namespace %s", r.stdout, hostNs(t, tns, "time"))
	}
	if in, err := strconv.ParseFloat(strings.Fields(lines[0])[0], 64); err != nil || in < host+900 {
		t.Errorf("uptime inside %s, the host's before %.2f: want about 1000 s more", lines[0], host)
	}
}

// A new user namespace with a time or cgroup namespace joined from the host (runc 1.1.5 runs
// the cgroup case). The init's constructor joins those, and it was cloned into the new user
// namespace, which holds no privilege over them: "joining cgroup namespace: operation not
// permitted". It now joins them first and makes the user namespace after, as for rootless.
// exec into the container joins them too (before its user namespace).
func TestNewUserNSJoinsHostTimeOrCgroupNS(t *testing.T) {
	for _, c := range []struct{ name, holderFlag, ns string }{
		{"time", "-T", "time"},
		{"cgroup", "-C", "cgroup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{c.holderFlag}
			if c.ns == "time" {
				args = append(args, "--boottime", "1000", "--fork")
			}
			h := holder(t, args...)
			e := newEnv(t, "sleep", "1000")
			withUserNS(e.spec)
			var ns []specs.LinuxNamespace
			for _, n := range e.spec.Linux.Namespaces {
				if string(n.Type) != c.ns {
					ns = append(ns, n)
				}
			}
			e.spec.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.LinuxNamespaceType(c.ns), Path: "/proc/" + h + "/ns/" + c.ns})
			if c.ns == "cgroup" {
				// A cgroup namespace the host's user namespace owns: the container's may
				// not mount cgroupfs for it (runc fails there too).
				var mounts []specs.Mount
				for _, m := range e.spec.Mounts {
					if m.Type != "cgroup" && m.Type != "cgroup2" {
						mounts = append(mounts, m)
					}
				}
				e.spec.Mounts = mounts
			}
			e.writeSpec()
			e.mustBerth("run", "-d", "--bundle", e.bundle, "ns-newuser")
			init := strconv.Itoa(e.state("ns-newuser").Pid)
			want := hostNs(t, h, c.ns)
			if got := hostNs(t, init, c.ns); got != want {
				t.Errorf("init in %s, want the holder's %s", got, want)
			}
			if hostNs(t, init, "user") == hostNs(t, "self", "user") {
				t.Error("the init is in the host's user namespace")
			}
			host := hostUptime(t)
			r := e.berth("exec", "ns-newuser", "sh", "-c", "readlink /proc/self/ns/"+c.ns+"; id -u; cat /proc/uptime")
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if r.code != 0 || len(lines) != 3 || lines[0] != want || lines[1] != "0" {
				t.Fatalf("exec: exit %d, stdout %q, stderr %q: want the holder's %s namespace, uid 0", r.code, r.stdout, r.stderr, c.ns)
			}
			if c.ns == "time" {
				if in, err := strconv.ParseFloat(strings.Fields(lines[2])[0], 64); err != nil || in < host+900 {
					t.Errorf("uptime in the exec'd process %s, the host's before %.2f: want about 1000 s more", lines[2], host)
				}
			}
			e.mustBerth("delete", "--force", "ns-newuser")
		})
	}
}
