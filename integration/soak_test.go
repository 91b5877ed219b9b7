package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/libcontainer"
)

// TestSoak cycles many containers through berth from parallel workers and then checks that
// nothing is left. Each container (busybox `sleep`, its cgroup under a parent of the soak's
// own) is created, started, sometimes exec'd into (now and then with -t, through berth's pty
// relay), paused, resumed, killed and deleted; one cycle in twenty is a foreground `run`
// instead, whose descriptors (and those of an `exec -t` relay beside it) are counted while the
// container runs. In every tenth cycle one berth command (create, start, exec, pause, kill or
// delete) is SIGKILLed after a random delay, as an engine may, and `delete --force` follows.
//
// At the end nothing may be left: no entry under --root, no mount under the soak's
// directories, no cgroup under the soak's parent on any v1 hierarchy or the cgroup2 tree, no
// process whose cmdline or cgroup is the soak's; berth's long-lived processes (`run`, the
// `exec -t` relay) hold no more descriptors late in the soak than early; and the wall time of a
// cycle does not grow grossly over the run (median of the last tenth against the first: the
// figures are logged, and only more than 3x fails, since timing is noisy).
//
// The short version (60 containers, 4 workers) runs in plain `go test`; `make soak` runs
// BERTH_SOAK_N=1000 BERTH_SOAK_WORKERS=8. BERTH_SOAK_SEED replays a run.
func TestSoak(t *testing.T) {
	n := envInt("BERTH_SOAK_N", 60)
	workers := envInt("BERTH_SOAK_WORKERS", 4)
	seed := int64(envInt("BERTH_SOAK_SEED", int(time.Now().UnixNano()%1e9)))
	s := &soak{t: t, dir: t.TempDir(), n: n, seed: seed}
	s.root = filepath.Join(s.dir, "root")
	s.prefix = fmt.Sprintf("soak%d-", os.Getpid())
	s.parent = "berth-" + strings.TrimSuffix(s.prefix, "-")
	s.fds = map[string][]int{}
	s.killed = map[string]int{}
	t.Cleanup(s.scrub)
	t.Logf("soak: %d containers, %d workers, seed %d, cgroup parent /%s", n, workers, seed, s.parent)

	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(w)))
			for i := range next {
				s.cycle(rng, i)
			}
		}(w)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)

	s.mu.Lock()
	failures := s.failures
	s.mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	left := s.leftovers()
	for _, l := range left {
		t.Errorf("left after the soak: %s", l)
	}
	kills := 0
	for _, k := range s.killed {
		kills += k
	}
	t.Logf("soak: %d containers cycled in %v, %d berth commands SIGKILLed %v, %d leftovers",
		n, wall.Round(time.Millisecond), kills, s.killed, len(left))
	s.checkFds()
	s.checkTimes()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type soak struct {
	t                         *testing.T
	dir, root, prefix, parent string
	n                         int
	seed                      int64
	mu                        sync.Mutex
	failures                  []string
	killed                    map[string]int   // command -> times SIGKILLed
	fds                       map[string][]int // "run", "exec -t" -> descriptor counts
	times                     []time.Duration  // plain cycles, in the order they finished
}

func (s *soak) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 50 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// bundle writes a bundle for id: the shared busybox rootfs, `sleep`, its cgroup under the
// soak's parent.
func (s *soak) bundle(id string) string {
	b := filepath.Join(s.dir, "bundles", id)
	if err := os.MkdirAll(b, 0o755); err != nil {
		s.fail("%s: %v", id, err)
	}
	spec := libcontainer.DefaultSpec()
	spec.Root.Path = rootfs
	spec.Process.Terminal = false
	spec.Process.Args = []string{"sleep", "3600"}
	spec.Linux.CgroupsPath = "/" + s.parent + "/" + id
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(b, "config.json"), data, 0o644); err != nil {
		s.fail("%s: %v", id, err)
	}
	return b
}

// command is a berth command of the soak; its output goes to files, since a container's init
// inherits berth's stdio and would hold a pipe open.
type command struct {
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	outF, errF     *os.File
	stdout, stderr string
	code           int
}

func (s *soak) start(args ...string) (*command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c := &command{cmd: exec.CommandContext(ctx, berthBin, append([]string{"--root", s.root}, args...)...), cancel: cancel}
	var err error
	if c.outF, err = os.CreateTemp(s.dir, "out"); err != nil {
		return nil, err
	}
	if c.errF, err = os.CreateTemp(s.dir, "err"); err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = c.outF, c.errF
	if err := c.cmd.Start(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *command) close() {
	c.cancel()
	c.outF.Close()
	c.errF.Close()
	os.Remove(c.outF.Name())
	os.Remove(c.errF.Name())
}

func (c *command) wait() {
	err := c.cmd.Wait()
	c.code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		c.code = ee.ExitCode()
	} else if err != nil {
		c.code = -1
	}
	o, _ := os.ReadFile(c.outF.Name())
	e, _ := os.ReadFile(c.errF.Name())
	c.stdout, c.stderr = string(o), string(e)
	c.close()
}

// berth runs one command to its end and says whether it exited 0 (a failure is recorded).
func (s *soak) berth(id string, args ...string) (*command, bool) {
	c, err := s.start(args...)
	if err != nil {
		s.fail("%s: berth %s: %v", id, strings.Join(args, " "), err)
		return nil, false
	}
	c.wait()
	if c.code != 0 {
		s.fail("%s: berth %s: exit %d: %s", id, strings.Join(args, " "), c.code, strings.TrimSpace(c.stderr))
		return c, false
	}
	return c, true
}

// killAt runs one command and SIGKILLs it after a random delay (it may have finished).
func (s *soak) killAt(rng *rand.Rand, args ...string) time.Duration {
	c, err := s.start(args...)
	if err != nil {
		return 0
	}
	d := time.Duration(rng.Intn(30000)) * time.Microsecond
	time.Sleep(d)
	c.cmd.Process.Kill()
	c.wait()
	s.mu.Lock()
	s.killed[args[0]]++
	s.mu.Unlock()
	return d
}

func (s *soak) status(id string) string {
	out, _ := exec.Command(berthBin, "--root", s.root, "state", id).Output()
	var st libcontainer.OCIState
	if json.Unmarshal(out, &st) != nil {
		return ""
	}
	return st.Status
}

func (s *soak) waitStatus(id, want string) bool {
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = s.status(id); last == want {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.fail("%s: never %s (last %q)", id, want, last)
	return false
}

// cycle takes container i through its life; a tenth of the cycles have a berth command
// SIGKILLed, a twentieth are a foreground run.
func (s *soak) cycle(rng *rand.Rand, i int) {
	id := fmt.Sprintf("%s%d", s.prefix, i)
	b := s.bundle(id)
	defer os.RemoveAll(b)
	// Exactly a tenth of the cycles kill a command (the short soak always has some).
	switch {
	case i%10 == 3:
		s.faultCycle(rng, id, b)
	case i%20 == 8:
		s.runCycle(id, b)
	default:
		t0 := time.Now()
		if s.plainCycle(rng, id, b) {
			d := time.Since(t0)
			s.mu.Lock()
			s.times = append(s.times, d)
			s.mu.Unlock()
		} else {
			exec.Command(berthBin, "--root", s.root, "delete", "--force", id).Run()
		}
	}
	s.gone(id)
}

func (s *soak) plainCycle(rng *rand.Rand, id, b string) bool {
	if _, ok := s.berth(id, "create", "--bundle", b, id); !ok {
		return false
	}
	if _, ok := s.berth(id, "start", id); !ok {
		return false
	}
	switch r := rng.Float64(); {
	case r < 0.1:
		// Foreground exec -t: berth relays between its stdio and the pty.
		want := "tty-" + id
		if c, ok := s.berth(id, "exec", "-t", id, "echo", want); ok && !strings.Contains(c.stdout, want) {
			s.fail("%s: exec -t printed %q", id, c.stdout)
		}
	case r < 0.5:
		want := "exec-" + id
		if c, ok := s.berth(id, "exec", id, "echo", want); ok && strings.TrimSpace(c.stdout) != want {
			s.fail("%s: exec printed %q", id, c.stdout)
		}
	}
	if _, ok := s.berth(id, "pause", id); !ok {
		return false
	}
	if st := s.status(id); st != "paused" {
		s.fail("%s: after pause: %q", id, st)
	}
	if _, ok := s.berth(id, "resume", id); !ok {
		return false
	}
	if st := s.status(id); st != "running" {
		s.fail("%s: after resume: %q", id, st)
	}
	if _, ok := s.berth(id, "kill", id, "KILL"); !ok {
		return false
	}
	if !s.waitStatus(id, "stopped") {
		return false
	}
	_, ok := s.berth(id, "delete", id)
	return ok
}

// faultCycle SIGKILLs one berth command of the cycle at a random moment, then force-deletes.
func (s *soak) faultCycle(rng *rand.Rand, id, b string) {
	steps := []string{"create", "start", "exec", "pause", "kill", "delete"}
	victim := steps[rng.Intn(len(steps))]
	do := func(step string, args ...string) bool {
		if step == victim {
			d := s.killAt(rng, args...)
			s.t.Logf("%s: berth %s SIGKILLed after %v", id, step, d)
			return false
		}
		_, ok := s.berth(id, args...)
		return ok
	}
	_ = do("create", "create", "--bundle", b, id) &&
		do("start", "start", id) &&
		do("exec", "exec", id, "sh", "-c", "sleep 0.02") &&
		do("pause", "pause", id) &&
		do("resume", "resume", id) &&
		do("kill", "kill", id, "KILL") &&
		s.waitStatus(id, "stopped") &&
		do("delete", "delete", "--force", id)
	if c, ok := s.berth(id, "delete", "--force", id); ok && c.stderr != "" {
		s.fail("%s: delete --force after a killed %s said %q", id, victim, c.stderr)
	}
}

// runCycle runs the container in the foreground and counts the descriptors of `run` and of an
// `exec -t` relay while the container lives.
func (s *soak) runCycle(id, b string) {
	run, err := s.start("run", "--bundle", b, id)
	if err != nil {
		s.fail("%s: run: %v", id, err)
		return
	}
	if s.waitStatus(id, "running") {
		s.sampleFds("run", run.cmd.Process.Pid)
		rel, err := s.start("exec", "-t", id, "sleep", "0.3")
		if err == nil {
			if s.waitRelaying(rel.cmd.Process.Pid) {
				s.sampleFds("exec -t", rel.cmd.Process.Pid)
			} else {
				s.fail("%s: exec -t never opened its pty", id)
			}
			rel.wait()
			if rel.code != 0 {
				s.fail("%s: exec -t: exit %d: %s", id, rel.code, rel.stderr)
			}
		}
		s.berth(id, "kill", id, "KILL")
	}
	run.wait()
	if run.code != 128+9 {
		s.fail("%s: run: exit %d, want 137: %s", id, run.code, strings.TrimSpace(run.stderr))
	}
}

// waitRelaying waits until the exec -t process holds a pty master (it is relaying).
func (s *soak) waitRelaying(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range fdLinks(pid) {
			if strings.Contains(l, "ptmx") {
				return true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

func fdLinks(pid int) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var links []string
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		links = append(links, e.Name()+"->"+l)
	}
	return links
}

// sampleFds counts the descriptors of a berth process once the count holds still.
func (s *soak) sampleFds(kind string, pid int) {
	prev := -1
	for k := 0; k < 50; k++ {
		n := len(fdLinks(pid))
		if n == prev {
			break
		}
		prev = n
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.fds[kind] = append(s.fds[kind], prev)
	s.mu.Unlock()
	if prev > 30 {
		s.fail("berth %s holds %d descriptors: %v", kind, prev, fdLinks(pid))
	}
}

// checkFds: berth's long-lived processes do not hold more descriptors as the soak goes on
// (the least count of the second half is not above that of the first half). A single sample
// may catch a process between two steps: it is logged, not failed.
func (s *soak) checkFds() {
	for kind, counts := range s.fds {
		lo, hi := counts[0], counts[0]
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		s.t.Logf("soak: descriptors of berth %s, %d samples: %d..%d %v", kind, len(counts), lo, hi, counts)
		if len(counts) < 2 {
			continue
		}
		half := len(counts) / 2
		if a, b := slices.Min(counts[:half]), slices.Min(counts[half:]); b > a {
			s.t.Errorf("berth %s held more descriptors later in the soak: at least %d, then at least %d", kind, a, b)
		}
	}
}

// checkTimes compares the median wall time of a plain cycle in the first and last tenth.
func (s *soak) checkTimes() {
	k := len(s.times) / 10
	if k < 3 {
		return
	}
	first, last := median(s.times[:k]), median(s.times[len(s.times)-k:])
	s.t.Logf("soak: wall time per plain cycle (%d cycles), median of the first tenth %v, of the last tenth %v",
		len(s.times), first.Round(100*time.Microsecond), last.Round(100*time.Microsecond))
	if last > 3*first && last-first > 100*time.Millisecond {
		s.t.Errorf("cycles grew slower over the soak: %v, then %v", first, last)
	}
}

func median(d []time.Duration) time.Duration {
	c := append([]time.Duration(nil), d...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[len(c)/2]
}

// gone checks, after each cycle, that container id has no state and no cgroup.
func (s *soak) gone(id string) {
	if _, err := os.Lstat(filepath.Join(s.root, id)); err == nil {
		s.fail("%s: state directory left", id)
	}
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, s.parent, id)); err == nil {
			s.fail("%s: cgroup %s left", id, filepath.Join(h, s.parent, id))
		}
	}
}

// cgroupHierarchies lists every mounted cgroup hierarchy (v1 and cgroup2) once.
func cgroupHierarchies() []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var hs []string
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, " - "); i > 0 {
			f, g := strings.Fields(line[:i]), strings.Fields(line[i+3:])
			if len(f) > 4 && len(g) > 0 && (g[0] == "cgroup" || g[0] == "cgroup2") {
				hs = append(hs, f[4])
			}
		}
	}
	return hs
}

// leftovers lists what the soak left: entries under --root, mounts under its directory or
// naming its containers, cgroups under its parent (or named for its containers) on every
// hierarchy, and processes whose cmdline or cgroup is the soak's.
func (s *soak) leftovers() []string {
	var left []string
	ents, _ := os.ReadDir(s.root)
	for _, e := range ents {
		left = append(left, "state root entry "+filepath.Join(s.root, e.Name()))
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, s.dir) || strings.Contains(line, s.prefix) {
			left = append(left, "mount: "+line)
		}
	}
	for _, h := range cgroupHierarchies() {
		filepath.WalkDir(h, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Contains(d.Name(), s.prefix) || filepath.Dir(p) == filepath.Join(h, s.parent) {
				left = append(left, "cgroup "+p)
				return fs.SkipDir
			}
			return nil
		})
	}
	// A container's init that berth left to the machine's pid 1 is reaped by it when pid 1
	// gets to it (and an init that exits waits, in state S, until the zombies of its pid
	// namespace are reaped): wait a while for such dying processes before calling them left.
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, zombies := s.processes()
		if len(procs) == zombies && zombies > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		return append(left, procs...)
	}
}

// dying says whether /proc/PID/stat is a zombie's or that of a process already exiting
// (PF_EXITING in its flags).
func dying(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || len(stat) < i+2 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	return f[0] == "Z" || f[0] == "X" || flags&0x4 != 0
}

// processes lists the processes whose cmdline or cgroup is the soak's, and how many of
// them are dying.
func (s *soak) processes() (left []string, zombies int) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := fmt.Sprintf("/proc/%d", os.Getpid())
	for _, p := range procs {
		if p == self {
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		cg, _ := os.ReadFile(p + "/cgroup")
		if bytes.Contains(cmdline, []byte(s.prefix)) || bytes.Contains(cmdline, []byte(s.dir)) ||
			bytes.Contains(cg, []byte("/"+s.parent+"/")) {
			stat, _ := os.ReadFile(p + "/stat")
			if dying(stat) {
				zombies++
			}
			left = append(left, fmt.Sprintf("process %s: %q, stat %q, cgroup %q", filepath.Base(p),
				bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), bytes.TrimSpace(stat), bytes.ReplaceAll(cg, []byte("\n"), []byte("; "))))
		}
	}
	return left, zombies
}

// scrub removes whatever a failed soak left, so the next run starts clean.
func (s *soak) scrub() {
	ents, _ := os.ReadDir(s.root)
	for _, e := range ents {
		exec.Command(berthBin, "--root", s.root, "delete", "--force", e.Name()).Run()
	}
	unmountUnder(s.dir)
	for _, h := range cgroupHierarchies() {
		subs, _ := os.ReadDir(filepath.Join(h, s.parent))
		for _, d := range subs {
			if d.IsDir() {
				os.Remove(filepath.Join(h, s.parent, d.Name()))
			}
		}
		os.Remove(filepath.Join(h, s.parent))
	}
}
