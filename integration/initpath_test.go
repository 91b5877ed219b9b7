package integration

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The two ways berth can set a container up: the Go init (forced by BERTH_GO_INIT=1) and
// whatever berth picks by itself (the C setup in the init's constructor, when the config
// allows it). Both must give the same container.
var initPaths = []struct{ name, env string }{
	{"go-init", "BERTH_GO_INIT=1"},
	{"default", ""},
}

// initPathCase is one config, run once on each init path.
type initPathCase struct {
	name string
	// config lays out the case's bundle and host files under w and returns its config.
	// It runs once per side, on a fresh w at the same paths, so both sides get identical
	// inputs.
	config func(t *testing.T, w *pathWork) *specs.Spec
	probe  []string // initprobe arguments beyond probeCommon
	// detached: create, look from the host at the created container, start, wait for it to
	// stop (the exec fifo path); otherwise a foreground run.
	detached bool
	// refused: berth must refuse the config; the probe never runs.
	refused bool
	// check looks at one side's report and returns what is wrong with it, to make sure the
	// case tests what it says (both sides agreeing on a broken container would prove nothing).
	check func(t *testing.T, w *pathWork, report string) []string
}

// probeCommon: the masked and read-only paths runc's, containerd's and podman's configs
// share, and a file in the root (read-only or not, by the case).
var probeCommon = []string{
	"write:/proc/keys", "write:/proc/timer_list", "create:/sys/firmware/probe",
	"write:/proc/sysrq-trigger", "write:/proc/sys/kernel/hostname", "create:/probe-file",
	"exit:7",
}

var initPathCases = []initPathCase{
	{
		name:   "runc-spec-run",
		config: func(t *testing.T, w *pathWork) *specs.Spec { return w.runcSpec(false) },
		check:  wantInReport("## berth run: exit status\n7\n", "NoNewPrivs: 1", "hostname=runc"),
	},
	{
		name:     "runc-spec-create-start",
		config:   func(t *testing.T, w *pathWork) *specs.Spec { return w.runcSpec(false) },
		detached: true,
		check:    wantInReport("## host: created init's cgroup\nprocs 1\n", "hostname=runc", "## berth start: exit status\n0\n"),
	},
	{
		name:     "cri-containerd",
		config:   criConfig,
		detached: true,
		probe: []string{"sysctl:net.ipv4.ip_unprivileged_port_start", "write:/etc/hosts",
			"write:/dev/termination-log", "stat:/etc/resolv.conf", "ls:/dev/shm",
			"syscall:333"}, // io_pgetevents on amd64: EINVAL from the kernel, EPERM from the profile
		check: wantInReport("Uid: 1000\t1000", "Groups: 1000 2000 3000", "NoNewPrivs: 1", "Seccomp: 2",
			"Seccomp_filters: 1", "## /proc/self/oom_score_adj\n1000\n", "## syscall 333\nerrno 1 "),
	},
	{
		name:   "userns-readonly-root",
		config: rootlessLikeConfig,
		probe:  []string{"cat:/proc/self/uid_map", "cat:/proc/self/gid_map", "ls:/"},
		check: func(t *testing.T, w *pathWork, report string) []string {
			uidMap := fmt.Sprintf("%10d %10d %10d\n", 0, subRanges(t)[0], 65536)
			return wantInReport("## berth run: exit status\n7\n", "## cat /proc/self/uid_map\n"+uidMap,
				"## create /probe-file\ncreate: error: read-only file system")(t, w, report)
		},
	},
	{
		name:   "mounts-and-devices",
		config: mountsAndDevicesConfig,
		probe: []string{"ls:/data", "ls:/data/sub", "ls:/shared", "stat:/etc/motd", "ls:/scratch",
			"create:/scratch/x", "create:/data/x", "sysctl:kernel.msgmax",
			"sysctl:net.ipv4.ip_unprivileged_port_start"},
		check: wantInReport("fuse crw-rw-rw- 0:0 dev=10:229", "null2 crw--w---- 1000:5 dev=1:3",
			"hostname=initpath domainname=example.test", " master:"),
	},
	{
		name:    "refuse-symlinked-proc",
		config:  symlinkedProcConfig,
		refused: true,
		check:   wantInReport("## berth run: exit status\n1\n", "symlink"),
	},
	{
		name:    "refuse-proc-on-link-to-proc",
		config:  procOnLinkToProcConfig,
		refused: true,
		check:   wantInReport("## berth run: exit status\n1\n", "symlink"),
	},
	{
		name:   "escaping-bind-destination",
		config: escapingDestinationConfig,
		check:  escapeStayedInside,
	},
}

// TestInitPathsAgree runs each case on the Go init and on berth's default init path and
// compares what the probe sees inside and what the host sees, line by line.
func TestInitPathsAgree(t *testing.T) {
	needTools(t, "runc", "strace")
	probe := buildInitProbe(t)
	for _, c := range initPathCases {
		t.Run(c.name, func(t *testing.T) {
			var reports []string
			for _, side := range initPaths {
				reports = append(reports, runOnInitPath(t, probe, c, side.name, side.env))
				// To read the reports whole: BERTH_INITPATH_REPORTS=DIR.
				if dir := os.Getenv("BERTH_INITPATH_REPORTS"); dir != "" {
					os.WriteFile(filepath.Join(dir, c.name+"."+side.name), []byte(reports[len(reports)-1]), 0o644)
				}
			}
			if reports[0] != reports[1] {
				t.Errorf("%s and %s differ (- %s, + %s):\n%s", initPaths[0].name, initPaths[1].name,
					initPaths[0].name, initPaths[1].name, lineDiff(reports[0], reports[1]))
			}
		})
	}
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// buildInitProbe builds testdata/initprobe once per test binary, static.
func buildInitProbe(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		probePath = filepath.Join(filepath.Dir(rootfs), "initprobe")
		cmd := exec.Command("go", "build", "-o", probePath, "./testdata/initprobe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building initprobe: %v: %s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

// pathWork is one side's files. Its paths are the same on both sides (the case's name under
// the test binary's directory, made afresh), so that host paths seen from inside (a bind
// mount's root in mountinfo, a descriptor's target) need no normalising.
type pathWork struct {
	t                   *testing.T
	id                  string // the container id, the same on both sides
	dir                 string
	bundle, rootfs      string
	state               string // berth --root
	undo                []func()
	watch               []string // host paths outside dir whose mounts are compared too
	env                 []string // berth's environment on this side
	debugLog            string   // --debug --log for run and create: which init path was taken
	stdoutPath, errPath string
}

func newPathWork(t *testing.T, name, sideEnv string) *pathWork {
	t.Helper()
	// Under the directory TestMain made 0755: a user-namespaced root must reach the rootfs.
	dir := filepath.Join(filepath.Dir(rootfs), "initpath", name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w := &pathWork{t: t, id: "ip-" + name, dir: dir, bundle: filepath.Join(dir, "bundle"),
		state: filepath.Join(dir, "state"), stdoutPath: filepath.Join(dir, "stdout"), errPath: filepath.Join(dir, "stderr")}
	w.rootfs = filepath.Join(w.bundle, "rootfs")
	for _, d := range []string{w.bundle, w.state, w.host("")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(rootfs, w.rootfs); err != nil {
		t.Fatalf("copying the rootfs: %v", err)
	}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BERTH_GO_INIT=") {
			w.env = append(w.env, e)
		}
	}
	if sideEnv != "" {
		w.env = append(w.env, sideEnv)
	}
	return w
}

func (w *pathWork) tracePath() string { return filepath.Join(w.dir, "trace") }

// host is a path for the case's host-side files (bind sources and the like).
func (w *pathWork) host(name string) string { return filepath.Join(w.dir, "host", name) }

func (w *pathWork) mkdir(p string, mode os.FileMode) {
	w.t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		w.t.Fatal(err)
	}
	os.Chmod(p, mode)
}

func (w *pathWork) writeFile(p, content string, mode os.FileMode) {
	w.t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		w.t.Fatal(err)
	}
}

// hostTmpfs mounts a tmpfs on the host at dir (made shared when asked) until the side ends.
func (w *pathWork) hostTmpfs(dir string, flags uintptr, data string, shared bool) {
	w.t.Helper()
	w.mkdir(dir, 0o755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, data); err != nil {
		w.t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
	}
	w.undo = append(w.undo, func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if shared {
		if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
			w.t.Fatal(err)
		}
	}
}

// finish removes whatever this side left, so that the other side starts from the same place.
func (w *pathWork) finish() {
	w.berth("delete", "--force", w.id)
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
	os.RemoveAll(w.dir)
}

// runcSpec is `runc spec` (or `runc spec --rootless`) written into the bundle, with the
// probe as the process and no terminal: everything else as runc wrote it.
func (w *pathWork) runcSpec(rootless bool) *specs.Spec {
	w.t.Helper()
	args := []string{"spec"}
	if rootless {
		args = append(args, "--rootless")
	}
	cmd := exec.Command("runc", args...)
	cmd.Dir = w.bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("runc %v: %v: %s", args, err, out)
	}
	var s specs.Spec
	w.readJSON(filepath.Join(w.bundle, "config.json"), &s)
	s.Process.Terminal = false
	return &s
}

func (w *pathWork) readJSON(p string, v any) {
	w.t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		w.t.Fatalf("%s: %v", p, err)
	}
}

// berth runs one berth command with this side's environment and state root, its output to
// the side's stdout and stderr files (files, not pipes: a created container keeps them).
func (w *pathWork) berth(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	ofile, efile := filepath.Join(w.dir, "berth.out"), filepath.Join(w.dir, "berth.err")
	code = w.berthTo(ofile, efile, args...)
	o, _ := os.ReadFile(ofile)
	e, _ := os.ReadFile(efile)
	return code, string(o), string(e)
}

func (w *pathWork) berthTo(stdout, stderr string, args ...string) int {
	w.t.Helper()
	return w.berthTraced(stdout, stderr, "", args...)
}

// berthTraced is berthTo, under strace when trace names its output file: every process and
// program of the command's tree is counted (counts, never times).
func (w *pathWork) berthTraced(stdout, stderr, trace string, args ...string) int {
	w.t.Helper()
	o, err1 := os.OpenFile(stdout, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	e, err2 := os.OpenFile(stderr, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err1 != nil || err2 != nil {
		w.t.Fatal(err1, err2)
	}
	defer o.Close()
	defer e.Close()
	argv := []string{berthBin, "--root", w.state}
	if w.debugLog != "" && len(args) > 0 && (args[0] == "run" || args[0] == "create") {
		argv = append(argv, "--debug", "--log", w.debugLog)
	}
	argv = append(argv, args...)
	if trace != "" {
		argv = append([]string{"strace", "-f", "-qq", "-o", trace, "-e", "trace=clone,clone3,fork,vfork,execve,execveat"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = w.env, o, e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("running berth: %v", err)
	}
	return 0
}

// report collects one side's observations in sections ("## name"), the probe's among them.
type report struct{ strings.Builder }

func (r *report) add(section, body string) {
	fmt.Fprintf(r, "## %s\n%s", section, body)
	if body != "" && !strings.HasSuffix(body, "\n") {
		r.WriteString("\n")
	}
}

// runOnInitPath runs case c once with berth's environment plus sideEnv and returns the
// normalised report.
func runOnInitPath(t *testing.T, probe string, c initPathCase, side, sideEnv string) string {
	w := newPathWork(t, c.name, sideEnv)
	defer w.finish()
	w.debugLog = filepath.Join(t.TempDir(), "debug.log")
	defer func() {
		// Each side must have taken its own path: the default one the init's C stage (a
		// config it declined would compare the Go init with itself and prove nothing).
		log, _ := os.ReadFile(w.debugLog)
		want := "the init builds the container in its C stage"
		if sideEnv != "" {
			want = "the Go init builds the container (BERTH_GO_INIT=1)"
		}
		if !strings.Contains(string(log), want) {
			t.Errorf("%s: berth's --debug log lacks %q", side, want)
		}
	}()
	spec := c.config(t, w)
	data, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	w.writeFile(filepath.Join(w.rootfs, "bin", "initprobe"), string(data), 0o755)
	spec.Process.Args = append(append([]string{"/bin/initprobe"}, probeCommon...), c.probe...)
	if data, err = json.MarshalIndent(spec, "", "\t"); err != nil {
		t.Fatal(err)
	}
	w.writeFile(filepath.Join(w.bundle, "config.json"), string(data), 0o644)

	var r report
	before := hostMountsUnder(append(w.watch, w.dir)...)
	if c.detached {
		w.createStart(&r)
	} else {
		code := w.berthTraced(w.stdoutPath, w.errPath, w.tracePath(), "run", "--bundle", w.bundle, w.id)
		r.add("berth run: exit status", strconv.Itoa(code))
		r.add("host: processes berth run started, programs executed", processCount(w.tracePath()))
	}
	out, _ := os.ReadFile(w.stdoutPath)
	errOut, _ := os.ReadFile(w.errPath)
	r.add("container stderr (and berth's)", string(errOut))
	r.WriteString(string(out)) // the probe's own sections
	if ran := strings.Contains(string(out), "## /proc/self/mountinfo"); ran == c.refused {
		t.Fatalf("%s: the probe ran: %t, want %t: stdout %q, stderr %q", side, ran, !c.refused, out, errOut)
	}
	w.hostView(&r, before)
	text := normalise(r.String())
	if c.check != nil {
		for _, problem := range c.check(t, w, text) {
			t.Errorf("%s: %s (BERTH_INITPATH_REPORTS=DIR keeps the reports)", side, problem)
		}
	}
	return text
}

// createStart is the detached path: create, the created container seen from the host,
// start, then wait for the probe to end.
func (w *pathWork) createStart(r *report) {
	w.t.Helper()
	code := w.berthTo(w.stdoutPath, w.errPath, "create", "--bundle", w.bundle, w.id)
	r.add("berth create: exit status", strconv.Itoa(code))
	if code != 0 {
		return
	}
	_, st, _ := w.berth("state", w.id)
	var state map[string]any
	if err := json.Unmarshal([]byte(st), &state); err != nil {
		w.t.Fatalf("state %q: %v", st, err)
	}
	pid, ok := state["pid"].(float64)
	if !ok {
		w.t.Fatalf("state without a pid: %s", st)
	}
	// The pid and the creation time are this run's own.
	delete(state, "pid")
	delete(state, "created")
	js, _ := json.Marshal(state) // maps marshal with sorted keys
	r.add("host: state of the created container", string(js))
	// Its permitted and effective sets are left out: the Go init's waiting stage is an
	// execve'd berth-wait, whose sets that execve recomputed (to none for a non-root user),
	// while the C stage waits without an exec, holding what capset gave it, as runc's init
	// does. The program's own sets, which the probe prints, must agree.
	r.add("host: created init's /proc/PID/status", statusOf(int(pid), "CapPrm", "CapEff"))
	r.add("host: created init's cgroup", cgroupCounts(int(pid)))
	code, _, errText := w.berth("start", w.id)
	r.add("berth start: exit status", strconv.Itoa(code))
	r.add("berth start: stderr", errText)
	w.waitStopped()
}

// processCount reads an strace output: how many processes (clone without CLONE_THREAD, fork)
// and programs (execve, execveat) succeeded.
func processCount(trace string) string {
	data, err := os.ReadFile(trace)
	if err != nil {
		return err.Error()
	}
	forks, execs := 0, 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "resumed>") || strings.Contains(l, "= -1") {
			continue
		}
		switch {
		case strings.Contains(l, "execve(") || strings.Contains(l, "execveat("):
			execs++
		case strings.Contains(l, "clone") && !strings.Contains(l, "CLONE_THREAD"), strings.Contains(l, "fork("):
			forks++
		}
	}
	return fmt.Sprintf("processes %d\nprograms %d\n", forks, execs)
}

// waitStopped polls the state until the container has stopped; a bound, not a timed check.
func (w *pathWork) waitStopped() {
	w.t.Helper()
	for i := 0; i < 2000; i++ {
		_, st, _ := w.berth("state", w.id)
		if strings.Contains(st, `"status": "stopped"`) || strings.Contains(st, `"status":"stopped"`) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Fatalf("%s never stopped", w.id)
}

// statusOf is what the host reads of a process's credentials, and its thread count.
func statusOf(pid int, leaveOut ...string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	keep := regexp.MustCompile(`^(Umask|Uid|Gid|Groups|Cap\w+|NoNewPrivs|Seccomp|Seccomp_filters|Threads):`)
	var b strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if keep.MatchString(l) && !slices.Contains(leaveOut, strings.SplitN(l, ":", 2)[0]) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// cgroupCounts counts the processes and threads in pid's cgroup: in the pids hierarchy on
// a v1 or hybrid host, in the unified one on a v2 host.
func cgroupCounts(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err.Error()
	}
	dir, threads := "", "tasks"
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) == 3 && f[1] == "pids":
			dir = filepath.Join("/sys/fs/cgroup/pids", f[2])
		case len(f) == 3 && f[0] == "0" && dir == "" && fileExists("/sys/fs/cgroup/cgroup.procs"):
			dir, threads = filepath.Join("/sys/fs/cgroup", f[2]), "cgroup.threads"
		}
	}
	var out string
	for _, file := range []string{"cgroup.procs", threads} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return err.Error()
		}
		out += fmt.Sprintf("%s %d\n", strings.TrimPrefix(file, "cgroup."), strings.Count(string(b), "\n"))
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// hostView is what the host sees once the side is over: berth's list, the mounts left or
// gone under the case's directory, and the case's files (mount points berth made in the
// rootfs, anything written to host directories).
func (w *pathWork) hostView(r *report, before []string) {
	if _, err := os.Stat(filepath.Join(w.state, w.id)); err == nil {
		w.berth("delete", w.id) // a stopped container: its record goes as containerd would delete it
	}
	_, list, listErr := w.berth("list")
	r.add("host: berth list", list+listErr)
	after := hostMountsUnder(append(w.watch, w.dir)...)
	r.add("host: mounts under the case's paths, gone", strings.Join(subtract(before, after), "\n"))
	r.add("host: mounts under the case's paths, new", strings.Join(subtract(after, before), "\n"))
	// Not stdout's size nor the trace's: their contents are compared above, normalised or
	// counted.
	r.add("host: the case's files", treeOf(w.dir, filepath.Join(w.rootfs, "bin"), w.stdoutPath, w.tracePath()))
}

// hostMountsUnder lists the test process's mounts whose mount point is one of dirs or below
// it. Only those: other tests on the machine mount and unmount elsewhere meanwhile.
func hostMountsUnder(dirs ...string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		for _, dir := range dirs {
			if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				lines = append(lines, l)
				break
			}
		}
	}
	return lines
}

func subtract(a, b []string) []string {
	in := map[string]bool{}
	for _, l := range b {
		in[l] = true
	}
	var out []string
	for _, l := range a {
		if !in[l] {
			out = append(out, l)
		}
	}
	return out
}

// treeOf lists every file under dir (relative name, type and mode, owner, size of regular
// files, symlink targets); not the entries of skipDir (the rootfs's copied /bin) nor
// skipFiles.
func treeOf(dir, skipDir string, skipFiles ...string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		if filepath.Dir(p) == skipDir || slices.Contains(skipFiles, p) {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			line += fmt.Sprintf(" size=%d", st.Size)
		case unix.S_IFLNK:
			t, _ := os.Readlink(p)
			line += " -> " + t
		}
		b.WriteString(line + "\n")
		return nil
	})
	return b.String()
}

// wantInReport: a side's report must contain each of want.
func wantInReport(want ...string) func(*testing.T, *pathWork, string) []string {
	return func(t *testing.T, w *pathWork, report string) []string {
		var problems []string
		for _, s := range want {
			if !strings.Contains(report, s) {
				problems = append(problems, fmt.Sprintf("the report lacks %q", s))
			}
		}
		return problems
	}
}

// normalise replaces, in one side's report, what two runs of the same container differ in
// legitimately, and nothing else:
//   - in mountinfo lines (the probe's and the host's): the numbers the kernel allocates
//     afresh for each mount. The mount id is dropped (the mount point names the line) and the
//     parent id becomes the parent's mount point; the minor number of an anonymous
//     filesystem's device (0:N, given to each new tmpfs, proc, sysfs... superblock) becomes the
//     mount point of the first mount of that superblock ("0:@/dev"); a peer group number
//     (shared:N, master:N, propagate_from:N) becomes the first mount point in that group, or
//     "#k" for a group with no member in the list. So the structure is still compared (whose
//     parent, which superblock, which peer group), and one extra mount changes one line.
//   - in the descriptor list: the inode number of a pipe, socket or anonymous inode
//     ("pipe:[123]").
//
// Everything else must match as is: both sides use the same paths and container id, and the
// probe prints no times or inode numbers.
func normalise(text string) string {
	var out, block []string
	inMountinfo := false
	flush := func() {
		out = append(out, normaliseMountinfo(block)...)
		block = nil
	}
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			flush()
			inMountinfo = strings.Contains(l, "mountinfo") || strings.Contains(l, "host: mounts under")
			out = append(out, l)
		case inMountinfo && l != "":
			block = append(block, l)
		default:
			out = append(out, inodeRef.ReplaceAllString(l, "$1:[#]"))
		}
	}
	flush()
	return strings.Join(out, "\n")
}

var (
	inodeRef = regexp.MustCompile(`^(\d+ -> (?:pipe|socket|anon_inode|net|mnt)):\[\d+\] `)
	peerRef  = regexp.MustCompile(`^(shared|master|propagate_from):(\d+)$`)
)

// normaliseMountinfo rewrites a block of mountinfo lines:
// "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER".
func normaliseMountinfo(lines []string) []string {
	name := map[string]string{}  // mount id -> its mount point (with "(n)" when stacked)
	dev := map[string]string{}   // anonymous device minor -> first mount point on it
	group := map[string]string{} // peer group -> first mount point in it
	seen := map[string]int{}
	var fields [][]string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 7 {
			fields = append(fields, nil)
			continue
		}
		fields = append(fields, f)
		seen[f[4]]++
		point := f[4]
		if seen[f[4]] > 1 {
			point += fmt.Sprintf("(%d)", seen[f[4]])
		}
		name[f[0]] = point
		if maj, min, _ := strings.Cut(f[2], ":"); maj == "0" && dev[min] == "" {
			dev[min] = point
		}
		for i := 6; i < len(f) && f[i] != "-"; i++ {
			if m := peerRef.FindStringSubmatch(f[i]); m != nil && m[1] == "shared" && group[m[2]] == "" {
				group[m[2]] = point
			}
		}
	}
	unknown := ordinals{}
	out := make([]string, len(lines))
	for i, f := range fields {
		if f == nil {
			out[i] = lines[i]
			continue
		}
		parent := "parent=outside"
		if p, ok := name[f[1]]; ok {
			parent = "parent=" + p
		}
		if maj, min, _ := strings.Cut(f[2], ":"); maj == "0" {
			f[2] = "0:@" + dev[min]
		}
		for j := 6; j < len(f) && f[j] != "-"; j++ {
			if m := peerRef.FindStringSubmatch(f[j]); m != nil {
				if g, ok := group[m[2]]; ok {
					f[j] = m[1] + ":@" + g
				} else {
					f[j] = m[1] + ":" + unknown.of(m[2])
				}
			}
		}
		out[i] = strings.Join(append([]string{parent}, f[2:]...), " ")
	}
	return out
}

// ordinals numbers values in the order they are first seen.
type ordinals map[string]int

func (o ordinals) of(v string) string {
	if _, ok := o[v]; !ok {
		o[v] = len(o) + 1
	}
	return "#" + strconv.Itoa(o[v])
}

// lineDiff shows the lines only in a ("-") and only in b ("+"), each under the "## " section
// it is in, from a longest common subsequence of the two.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	section, shown := "", ""
	emit := func(sign, line string) {
		if section != shown {
			out.WriteString(section + "\n")
			shown = section
		}
		out.WriteString(sign + " " + line + "\n")
	}
	for i, j := 0, 0; i < n || j < m; {
		switch {
		case i < n && j < m && x[i] == y[j]:
			if strings.HasPrefix(x[i], "## ") {
				section = x[i]
			}
			i, j = i+1, j+1
		case j == m || i < n && lcs[i+1][j] >= lcs[i][j+1]:
			emit("-", x[i])
			i++
		default:
			emit("+", y[j])
			j++
		}
	}
	return out.String()
}

// criConfig is a pod's container as containerd 1.6/1.7's CRI plugin writes its config
// (testdata/initpath/cri-container.json, written after containerd's code: its default spec,
// CRI's binds of the sandbox's hosts, hostname, resolv.conf and shm and of the termination
// log, read-only sysfs and cgroup, masked and read-only paths, a non-root user with
// additional gids, the default capabilities, noNewPrivileges, a best-effort pod's oomScoreAdj
// and cgroup, the unprivileged-port sysctl), with a RuntimeDefault seccomp profile. Where a
// pod's container would join its sandbox's namespaces it gets new ones, with the sandbox's
// hostname.
func criConfig(t *testing.T, w *pathWork) *specs.Spec {
	sandbox, termlog := w.host("sandbox"), w.host("termination-log")
	w.mkdir(sandbox, 0o755)
	w.writeFile(filepath.Join(sandbox, "hosts"), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", 0o644)
	w.writeFile(filepath.Join(sandbox, "hostname"), "initpath-pod\n", 0o644)
	w.writeFile(filepath.Join(sandbox, "resolv.conf"), "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n", 0o644)
	// The sandbox's /dev/shm, as containerd mounts it on the host.
	w.hostTmpfs(filepath.Join(sandbox, "shm"), unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k", false)
	w.writeFile(termlog, "", 0o666)
	data, err := os.ReadFile("testdata/initpath/cri-container.json")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.NewReplacer("@SANDBOX@", sandbox, "@TERMLOG@", termlog, "@ID@", w.id).Replace(string(data)))
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.Linux.Seccomp = runtimeDefaultSeccomp(t, s.Process.Capabilities.Bounding)
	pod := "kubepods-initpath/besteffort/pod0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	w.undo = append(w.undo, func() { rmdirCgroups(pod, filepath.Dir(pod), filepath.Dir(filepath.Dir(pod))) })
	return &s
}

// runtimeDefaultSeccomp is a RuntimeDefault profile as an engine hands it to the runtime:
// containers-common's seccomp.json (the moby profile, which containerd's default is made
// from too), keeping the rules for amd64 and the container's capabilities (their "includes"
// met, their "excludes" not, as the engines decide), in the OCI form.
func runtimeDefaultSeccomp(t *testing.T, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	type cond struct {
		Arches []string `json:"arches"`
		Caps   []string `json:"caps"`
	}
	var prof struct {
		DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
		DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
		ArchMap         []struct {
			Arch specs.Arch   `json:"architecture"`
			Sub  []specs.Arch `json:"subArchitectures"`
		} `json:"archMap"`
		Syscalls []struct {
			specs.LinuxSyscall
			Includes cond `json:"includes"`
			Excludes cond `json:"excludes"`
		} `json:"syscalls"`
	}
	data, err := os.ReadFile("/usr/share/containers/seccomp.json")
	if err != nil {
		t.Skipf("containers-common's seccomp profile (package golang-github-containers-common): %v", err)
	}
	if err := json.Unmarshal(data, &prof); err != nil {
		t.Fatal(err)
	}
	all := func(want []string) bool {
		for _, c := range want {
			if !slices.Contains(caps, c) {
				return false
			}
		}
		return true
	}
	anyOf := func(want []string) bool {
		return slices.ContainsFunc(want, func(c string) bool { return slices.Contains(caps, c) })
	}
	sc := &specs.LinuxSeccomp{DefaultAction: prof.DefaultAction, DefaultErrnoRet: prof.DefaultErrnoRet}
	for _, a := range prof.ArchMap {
		if a.Arch == specs.ArchX86_64 {
			sc.Architectures = append([]specs.Arch{a.Arch}, a.Sub...)
		}
	}
	for _, r := range prof.Syscalls {
		excluded := slices.Contains(r.Excludes.Arches, "amd64") || anyOf(r.Excludes.Caps)
		included := (len(r.Includes.Arches) == 0 || slices.Contains(r.Includes.Arches, "amd64")) && all(r.Includes.Caps)
		if included && !excluded {
			sc.Syscalls = append(sc.Syscalls, r.LinuxSyscall)
		}
	}
	return sc
}

// rootlessLikeConfig is `runc spec --rootless` used by root: a user namespace (mapped to a
// subordinate range rather than to the caller's own id) and runc's read-only root.
func rootlessLikeConfig(t *testing.T, w *pathWork) *specs.Spec {
	s := w.runcSpec(true)
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: subRanges(t)[0], Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: subRanges(t)[1], Size: 65536}}
	s.Root.Readonly = true
	return s
}

var (
	subRangesOnce sync.Once
	subRangeIDs   [2]uint32
)

// subRanges is root's uid and gid ranges, read once: other tests add ranges to the files
// meanwhile, and both sides must get the same maps.
func subRanges(t *testing.T) [2]uint32 {
	subRangesOnce.Do(func() {
		subRangeIDs = [2]uint32{rootSubRange(t, "/etc/subuid"), rootSubRange(t, "/etc/subgid")}
	})
	return subRangeIDs
}

// rootSubRange is root's range in a subordinate id file, or the first start above every
// range listed there. Nothing is written: root writes its maps itself.
func rootSubRange(t *testing.T, file string) uint32 {
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	next := uint32(100000)
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		if f[0] == "root" && count >= 65536 {
			return uint32(start)
		}
		next = max(next, uint32(start+count))
	}
	return next
}

// mountsAndDevicesConfig is `runc spec` (read-only root) with the mount and device kinds the
// setup must get right: a tmpfs with mode, size and ro; a file bind; an rbind,ro of a host
// directory with a submount; an rbind,rslave of a shared host mount; a private root; hostname
// and domainname; sysctls; devices with their own modes and owners.
func mountsAndDevicesConfig(t *testing.T, w *pathWork) *specs.Spec {
	s := w.runcSpec(false)
	data, shared, motd := w.host("data"), w.host("shared"), w.host("motd")
	w.mkdir(data, 0o755)
	w.writeFile(filepath.Join(data, "f"), "data\n", 0o644)
	w.hostTmpfs(filepath.Join(data, "sub"), 0, "size=1m,mode=750", false) // rbind takes it along
	w.hostTmpfs(shared, 0, "size=1m", true)                               // the container's copy: its slave
	w.writeFile(motd, "hello\n", 0o600)
	s.Root.Readonly = true
	s.Hostname, s.Domainname = "initpath", "example.test"
	s.Linux.RootfsPropagation = "private"
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1750", "size=1m", "ro"}},
		specs.Mount{Destination: "/etc/motd", Type: "bind", Source: motd, Options: []string{"bind", "ro", "nosuid"}},
		specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/shared", Type: "bind", Source: shared, Options: []string{"rbind", "rslave"}},
	)
	fuseMode, nullMode := os.FileMode(0o666), os.FileMode(0o620)
	root, uid, tty := uint32(0), uint32(1000), uint32(5)
	s.Linux.Devices = append(s.Linux.Devices,
		specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &fuseMode, UID: &root, GID: &root},
		specs.LinuxDevice{Path: "/dev/null2", Type: "c", Major: 1, Minor: 3, FileMode: &nullMode, UID: &uid, GID: &tty},
	)
	s.Linux.Sysctl = map[string]string{"kernel.msgmax": "4096", "net.ipv4.ip_unprivileged_port_start": "80"}
	return s
}

// symlinkedProcConfig: the image's /proc is a symlink (to /elsewhere), which would take the
// proc mount elsewhere (CVE-2019-19921). berth refuses it, on both paths alike.
func symlinkedProcConfig(t *testing.T, w *pathWork) *specs.Spec {
	s := w.runcSpec(false)
	proc := filepath.Join(w.rootfs, "proc")
	if err := os.RemoveAll(proc); err != nil {
		t.Fatal(err)
	}
	w.mkdir(filepath.Join(w.rootfs, "elsewhere"), 0o755)
	if err := os.Symlink("/elsewhere", proc); err != nil {
		t.Fatal(err)
	}
	w.watch = append(w.watch, "/elsewhere") // where the link leads if followed on the host
	return s
}

// procOnLinkToProcConfig: a second proc mount whose destination is a symlink to /proc in the
// rootfs, the other shape of CVE-2019-19921's redirected proc mount. Refused as well.
func procOnLinkToProcConfig(t *testing.T, w *pathWork) *specs.Spec {
	s := w.runcSpec(false)
	if err := os.Symlink("/proc", filepath.Join(w.rootfs, "altproc")); err != nil {
		t.Fatal(err)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/altproc", Type: "proc", Source: "proc"})
	return s
}

// escapingDestinationConfig: a bind and a tmpfs whose destinations go through symlinks out of
// the rootfs (an absolute one and one climbing with ..) to a host directory. The mounts must
// land inside the rootfs, where the links resolve with the rootfs as /.
func escapingDestinationConfig(t *testing.T, w *pathWork) *specs.Spec {
	s := w.runcSpec(false)
	escape, data := filepath.Join(w.dir, "escape"), w.host("data")
	w.mkdir(escape, 0o755)
	w.mkdir(data, 0o755)
	w.writeFile(filepath.Join(data, "f"), "data\n", 0o644)
	for name, target := range map[string]string{"evil": escape, "evil2": strings.Repeat("../", 16) + escape[1:]} {
		if err := os.Symlink(target, filepath.Join(w.rootfs, name)); err != nil {
			t.Fatal(err)
		}
	}
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/evil/x", Type: "bind", Source: data, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/evil2/y", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
	)
	return s
}

// escapeStayedInside: the host directory the links name is still empty, and the container's
// mount table has both mounts where the links lead inside the rootfs.
func escapeStayedInside(t *testing.T, w *pathWork, report string) []string {
	var problems []string
	escape := filepath.Join(w.dir, "escape")
	if ents, _ := os.ReadDir(escape); len(ents) != 0 {
		problems = append(problems, fmt.Sprintf("a mount destination reached the host directory %s: %v", escape, ents))
	}
	for _, p := range []string{escape + "/x", escape + "/y"} {
		if !strings.Contains(report, " "+p+" ") {
			problems = append(problems, "no mount at "+p+" inside the container")
		}
	}
	return problems
}

var execPids = regexp.MustCompile(`\b(pid|sid|pgid)=\d+`)

// TestExecPathsAgree is TestInitPathsAgree for `berth exec`: the same probe exec'd into one
// running container, once by the Go init (runExec) and once by berth's default path (the
// init's C stage), must see the same process, as a plain exec and as one with its own user,
// capabilities, no_new_privs, environment, cwd and rlimits.
func TestExecPathsAgree(t *testing.T) {
	needTools(t, "runc")
	probe := buildInitProbe(t)
	w := newPathWork(t, "exec", "")
	defer w.finish()
	spec := w.runcSpec(false)
	data, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	w.writeFile(filepath.Join(w.rootfs, "bin", "initprobe"), string(data), 0o755)
	spec.Process.Args = []string{"sleep", "1000"}
	if data, err = json.MarshalIndent(spec, "", "\t"); err != nil {
		t.Fatal(err)
	}
	w.writeFile(filepath.Join(w.bundle, "config.json"), string(data), 0o644)
	if code, _, e := w.berth("run", "--detach", "--bundle", w.bundle, w.id); code != 0 {
		t.Fatalf("run -d: %s", e)
	}
	defer w.berth("delete", "--force", w.id)
	// The probe's own descriptors and session differ by nothing but numbers: normalise.
	args := append([]string{"/bin/initprobe"}, probeCommon...)
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"plain", nil},
		{"user-caps-env", []string{"--user", "1000:1000", "--additional-gids", "2000", "--cap", "CAP_NET_RAW",
			"--no-new-privs", "--env", "PROBE=1", "--cwd", "/tmp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var outs []string
			for _, side := range initPaths {
				log := filepath.Join(t.TempDir(), "debug.log")
				argv := append(append([]string{berthBin, "--root", w.state, "--debug", "--log", log, "exec"}, c.flags...), w.id)
				cmd := exec.Command(argv[0], append(argv[1:], args...)...)
				cmd.Env = w.env
				if side.env != "" {
					cmd.Env = append(append([]string{}, w.env...), side.env)
				}
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				text, _ := os.ReadFile(log)
				want := "the process is set up by the init's C stage"
				if side.env != "" {
					want = "the process is set up by the Go init (BERTH_GO_INIT=1)"
				}
				if !strings.Contains(string(text), want) {
					t.Errorf("%s: berth's --debug log lacks %q", side.name, want)
				}
				// Two exec'd processes have two pids (and so sessions and groups): only their
				// relations (leader or not) are compared.
				text2 := execPids.ReplaceAllString(string(out), "${1}=N")
				outs = append(outs, normalise(fmt.Sprintf("## exit status\n%d\n%s", code, text2)))
			}
			if !strings.Contains(outs[1], "## /proc/self/mountinfo") {
				t.Fatalf("the probe did not run:\n%s", outs[1])
			}
			if outs[0] != outs[1] {
				t.Errorf("go-init and default differ (- go-init, + default):\n%s", lineDiff(outs[0], outs[1]))
			}
		})
	}
}
