package explain

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
)

// A Timeline collects the steps of one berth command, with those its processes relayed, for
// `--explain=html FILE` (WriteHTML). Use its Add as the Sink, with SetTiming(true).
type Timeline struct {
	mu    sync.Mutex
	Title string // the command line
	Err   string // the command's error, if it failed
	Steps []Step
}

// Add records a step or an idle mark.
func (t *Timeline) Add(s Step) {
	t.mu.Lock()
	t.Steps = append(t.Steps, s)
	t.mu.Unlock()
}

// Snapshot is a copy of the steps recorded so far.
func (t *Timeline) Snapshot() []Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Step(nil), t.Steps...)
}

// Groups are the kinds of work a step belongs to, in the order the page lists them.
var Groups = []string{"namespaces", "cgroups", "rootfs", "image", "capabilities", "seccomp", "hooks", "exec", "lifecycle"}

// libcontainerGroups sorts the steps of package libcontainer, which does several kinds of work.
var libcontainerGroups = map[string]string{
	"startInit": "namespaces", "forkedInitPid": "namespaces", "Exec": "namespaces", "runExec": "namespaces",
	"setHostnames": "namespaces", "setSysctls": "namespaces",
	"launch.start": "cgroups", "Pause": "cgroups", "Resume": "cgroups", "Update": "cgroups",
	"idmapMount": "rootfs", "cloneBindSource": "rootfs", "cloneSysfs": "rootfs", "makeCwd": "rootfs",
	"dropBoundingSet": "capabilities", "setCapabilities": "capabilities", "finalizeProcess": "capabilities",
	"setUser":              "capabilities",
	"seccompStage.install": "seccomp", "sendSeccompListener": "seccomp",
	"runHooks": "hooks",
	"destroy":  "lifecycle", "Signal": "lifecycle", "signalAll": "lifecycle", "Delete": "lifecycle",
	"Load": "lifecycle", "publishDir": "lifecycle", "Launched.Wait": "lifecycle",
}

// Group is the kind of work the step called name does: its package, except for
// libcontainer's steps, which are sorted by what they do (process setup and the exec are
// "exec").
func Group(name string) string {
	pkg, fn, _ := strings.Cut(name, ".")
	switch pkg {
	case "namespaces", "cgroups", "rootfs", "image", "seccomp":
		return pkg
	case "libcontainer":
		if g, ok := libcontainerGroups[fn]; ok {
			return g
		}
	}
	return "exec"
}

// Lanes the libcontainer package names; others ("berth run", ...) are the command's own.
const (
	LaneInit    = "init"
	LaneWaiting = "waiting stage"
	LaneProgram = "program"
	LaneExec    = "exec process"
)

// laneNotes say what each lane is.
var laneNotes = map[string]string{
	LaneInit:    "berth init: the container's first process, in its new namespaces (Go, after the C constructor)",
	LaneWaiting: "berth-wait: a small C stage, no Go runtime; blocks opening exec.fifo until start",
	LaneProgram: "the user's program: the init's execve",
	LaneExec:    "berth init for exec: joins the container's namespaces and cgroup, then execs the process",
}

// box is one step as drawn: its place in percent of the page's time span.
type box struct {
	Step
	ID          int
	Group       string
	Short       string // the function's name without its package
	Start, Dur  int64  // since the first step; how long, in ns
	Left, Width float64
}

func (b box) StartMs() string { return ms(b.Start) }
func (b box) DurMs() string   { return ms(b.Dur) }

type row struct {
	Group string
	Boxes []box
}

type laneView struct {
	Name, Note string
	Pid        int
	Rows       []row
	Busy       int64 // ns covered by its steps
}

func (l laneView) BusyMs() string { return ms(l.Busy) }

type tick struct {
	Left  float64
	Label string
}

// page is what html.go renders.
type page struct {
	Title, Err   string
	Span, Ready  string // ms: the whole picture; first step to the program's exec ("" if none)
	Lanes        []laneView
	Groups       []string
	Steps        []box
	Slowest      []box
	Ticks        []tick
	ProgramLabel string
}

// layout turns the recorded events into lanes of boxes. A step lasts until the next event of
// its lane (a step or an idle mark); the last one of a lane has no length.
func layout(title, errMsg string, steps []Step) page {
	p := page{Title: title, Err: errMsg, Groups: Groups}
	evs := append([]Step(nil), steps...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	if len(evs) == 0 {
		return p
	}
	t0, t1 := evs[0].At, evs[len(evs)-1].At
	span := t1 - t0
	if span <= 0 {
		span = 1
	}
	p.Span = ms(t1 - t0)
	var order []string
	byLane := map[string][]int{}
	for i, e := range evs {
		if _, ok := byLane[e.Lane]; !ok {
			order = append(order, e.Lane)
		}
		byLane[e.Lane] = append(byLane[e.Lane], i)
	}
	id := 0
	var all []box
	for _, name := range order {
		lv := laneView{Name: name, Note: laneNotes[name]}
		if lv.Name == "" {
			lv.Name = "berth"
		}
		rows := map[string]*row{}
		idx := byLane[name]
		for k, i := range idx {
			e := evs[i]
			if lv.Pid == 0 {
				lv.Pid = e.Pid
			}
			if e.Idle() {
				continue
			}
			end := e.At
			if k+1 < len(idx) {
				end = evs[idx[k+1]].At
			}
			id++
			b := box{Step: e, ID: id, Group: Group(e.Name), Start: e.At - t0, Dur: end - e.At}
			b.Short = e.Name
			if _, fn, ok := strings.Cut(e.Name, "."); ok {
				b.Short = fn
			}
			b.Left = pct(b.Start, span)
			b.Width = pct(b.Dur, span)
			if b.Left+b.Width > 100 {
				b.Width = 100 - b.Left
			}
			lv.Busy += b.Dur
			if name == LaneProgram && p.Ready == "" {
				p.Ready = ms(e.At - t0)
			}
			r := rows[b.Group]
			if r == nil {
				r = &row{Group: b.Group}
				rows[b.Group] = r
			}
			r.Boxes = append(r.Boxes, b)
			all = append(all, b)
		}
		for _, g := range Groups {
			if r := rows[g]; r != nil {
				lv.Rows = append(lv.Rows, *r)
			}
		}
		p.Lanes = append(p.Lanes, lv)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start < all[j].Start })
	p.Steps = all
	// The slowest steps are berth's work: the waiting stage and the program are left out.
	var work []box
	for _, b := range all {
		if b.Lane != LaneWaiting && b.Lane != LaneProgram {
			work = append(work, b)
		}
	}
	sort.SliceStable(work, func(i, j int) bool { return work[i].Dur > work[j].Dur })
	if len(work) > 10 {
		work = work[:10]
	}
	p.Slowest = work
	p.Ticks = ticks(t1 - t0)
	return p
}

func pct(n, span int64) float64 { return math.Round(float64(n)/float64(span)*100000) / 1000 }

func ms(ns int64) string { return fmt.Sprintf("%.3f ms", float64(ns)/1e6) }

// ticks marks the time axis every 1, 2 or 5 times a power of ten, about eight times.
func ticks(span int64) []tick {
	if span <= 0 {
		return nil
	}
	step := int64(0)
	for m := int64(1); step == 0; m *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if span/(m*f) <= 8 {
				step = m * f
				break
			}
		}
	}
	var out []tick
	for t := int64(0); t <= span; t += step {
		out = append(out, tick{Left: pct(t, span), Label: strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", float64(t)/1e6), "0"), ".") + " ms"})
	}
	return out
}
