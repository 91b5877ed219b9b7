package integration

// Helpers shared by the containerd and podman tests: an OCI image archive built from the
// busybox rootfs, a wrapper that records every command line the engines give berth, and a
// runner for the engines' CLIs.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	compatOnce sync.Once
	compatTar  string // an oci-archive: the busybox rootfs as one layer, tagged "latest"
	compatErr  error
)

// compatArchive builds (once) an OCI image archive of the busybox rootfs with umoci, for
// `ctr images import` and `podman load`: nothing is pulled from a registry.
func compatArchive(t *testing.T) string {
	t.Helper()
	needTools(t, "umoci")
	compatOnce.Do(func() {
		// Under the directory TestMain removes at the end.
		dir, err := os.MkdirTemp(filepath.Dir(rootfs), "compat-img-")
		if err != nil {
			compatErr = err
			return
		}
		layout := filepath.Join(dir, "layout")
		for _, c := range [][]string{
			{"umoci", "init", "--layout", layout},
			{"umoci", "new", "--image", layout + ":latest"},
			{"umoci", "insert", "--image", layout + ":latest", rootfs, "/"},
			{"umoci", "config", "--image", layout + ":latest", "--config.cmd", "sh",
				"--config.env", "PATH=/bin:/sbin"},
		} {
			if compatErr = sh(dir, c[0], c[1:]...); compatErr != nil {
				return
			}
		}
		compatTar = filepath.Join(dir, "busybox.tar")
		compatErr = sh(layout, "tar", "-cf", compatTar, ".")
	})
	if compatErr != nil {
		t.Fatalf("building the image archive: %v", compatErr)
	}
	return compatTar
}

// installArgvWrapper writes dir/name, a shell script that appends its command line to
// dir/name.argv (arguments separated by tabs, one call a line) and execs berth with it: the
// engine sees berth itself (same process, same pid), only its arguments are recorded.
func installArgvWrapper(t *testing.T, dir, name string) (wrapper, logPath string) {
	t.Helper()
	wrapper = filepath.Join(dir, name)
	logPath = wrapper + ".argv"
	script := fmt.Sprintf("#!/bin/sh\n"+
		"{ for a in \"$@\"; do printf '%%s\\t' \"$a\"; done; printf '\\n'; } >>'%s'\n"+
		"exec '%s' \"$@\"\n", logPath, berthBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, logPath
}

// readArgv returns the command lines the wrapper recorded.
func readArgv(t *testing.T, logPath string) [][]string {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatalf("no command line was recorded: %v", err)
	}
	defer f.Close()
	var calls [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\t")
		if line == "" {
			calls = append(calls, nil)
			continue
		}
		calls = append(calls, strings.Split(line, "\t"))
	}
	return calls
}

// globalWithValue are runc's global flags that take the next argument as their value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true,
	"--criu": true, "--rootless": true}

// flagName is "--flag" for "--flag=value", "-flag" and "--flag".
func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	if !strings.HasPrefix(name, "--") {
		name = "-" + name
	}
	return name
}

// argvUsage sorts command lines into the subcommands used and the flags given to each; the
// global flags are under "(global)", a call with no subcommand (--version) under its flag.
func argvUsage(calls [][]string) map[string]map[string]bool {
	use := map[string]map[string]bool{}
	add := func(cmd, flag string) {
		if use[cmd] == nil {
			use[cmd] = map[string]bool{}
		}
		if flag != "" {
			use[cmd][flag] = true
		}
	}
	for _, argv := range calls {
		i := 0
		var global []string
		for ; i < len(argv) && strings.HasPrefix(argv[i], "-"); i++ {
			global = append(global, flagName(argv[i]))
			if globalWithValue[argv[i]] {
				i++
			}
		}
		if i >= len(argv) {
			if len(global) > 0 {
				add(strings.Join(global, " ")+" (no subcommand)", "")
			}
			continue
		}
		for _, g := range global {
			add("(global)", g)
		}
		cmd := argv[i]
		add(cmd, "")
		for _, a := range argv[i+1:] {
			if strings.HasPrefix(a, "-") && len(a) > 1 && (a[1] < '0' || a[1] > '9') {
				add(cmd, flagName(a))
			}
		}
	}
	return use
}

// logArgv reports what the wrapper recorded: every command line when the test failed or
// runs with -v, then the subcommands and flags used.
func logArgv(t *testing.T, who string, calls [][]string) map[string]map[string]bool {
	t.Helper()
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		for _, c := range calls {
			fmt.Fprintf(&b, "  %s\n", strings.Join(c, " "))
		}
		t.Logf("command lines %s gave berth:\n%s", who, b.String())
	}
	use := argvUsage(calls)
	t.Logf("berth subcommands and flags %s used (%d calls):\n%s", who, len(calls), formatUsage(use))
	return use
}

// allSubtests says whether -run selects whole tests only (no "/"): then every subtest ran and
// the subcommands they use must all have been seen.
func allSubtests() bool {
	f := flag.Lookup("test.run")
	return f == nil || !strings.Contains(f.Value.String(), "/")
}

// formatUsage prints argvUsage one subcommand a line: "create: --bundle --pid-file".
func formatUsage(use map[string]map[string]bool) string {
	var cmds []string
	for c := range use {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	var b strings.Builder
	for _, c := range cmds {
		var flags []string
		for f := range use[c] {
			flags = append(flags, f)
		}
		sort.Strings(flags)
		fmt.Fprintf(&b, "%s: %s\n", c, strings.Join(flags, " "))
	}
	return b.String()
}

// toolResult is what a command printed and how it exited.
type toolResult struct {
	stdout, stderr string
	code           int
}

func (r toolResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// runTool runs a command with extra environment, stdio in files (a detached container may
// hold on to a pipe), killed after timeout.
func runTool(t *testing.T, env []string, timeout time.Duration, name string, args ...string) toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Errorf("%s %s: killed after %v", name, strings.Join(args, " "), timeout)
	}
	o, _ := os.ReadFile(out.Name())
	x, _ := os.ReadFile(errf.Name())
	return toolResult{string(o), string(x), code}
}

// unmountUnder detaches every mount at or below dir (deepest first), so that a test that
// stopped half-way still leaves a removable temporary directory.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
}

// rmdirCgroups removes the (empty) cgroup directory rel in every hierarchy, deepest first.
func rmdirCgroups(rel ...string) {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range rel {
		for _, h := range append(hier, "/sys/fs/cgroup") {
			os.Remove(filepath.Join(h, r))
		}
	}
}
