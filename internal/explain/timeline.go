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
	idle  map[string]bool // lanes whose last event is an idle mark
}

// Add records a step or an idle mark (a lane already idle stays so: berth marks itself idle
// before each message it reads from the init).
func (t *Timeline) Add(s Step) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = map[string]bool{}
	}
	if s.Idle() && t.idle[s.Lane] {
		return
	}
	if s.Dur == 0 {
		t.idle[s.Lane] = s.Idle()
	}
	t.Steps = append(t.Steps, s)
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
	lane        int // index in the page's lanes
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

// cut is a stretch of the axis cut short: Label says how long it really is.
type cut struct {
	Left, Width float64
	Label       string
}

// page is what html.go renders.
type page struct {
	Title, Err  string
	Span, Ready string // ms: the whole picture; first step to the program's exec ("" if none)
	Lanes       []laneView
	Groups      []string
	Steps       []box
	Slowest     []box
	Ticks       []tick
	Cuts        []cut
}

// layout turns the recorded events into lanes of boxes. A step lasts until the next event of
// its lane (a step or an idle mark); the last one of a lane has no length. Long stretches
// where berth does nothing (the waiting stage between create and a later start) are drawn
// cut short (see timeMap).
func layout(title, errMsg string, steps []Step) page {
	p := page{Title: title, Err: errMsg, Groups: Groups}
	evs := append([]Step(nil), steps...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	if len(evs) == 0 {
		return p
	}
	t0, t1 := evs[0].At, evs[len(evs)-1].At
	p.Span = ms(t1 - t0)
	var order []string
	byLane := map[string][]int{}
	for i, e := range evs {
		if _, ok := byLane[e.Lane]; !ok {
			order = append(order, e.Lane)
		}
		byLane[e.Lane] = append(byLane[e.Lane], i)
	}
	var all []box
	lanes := make([]laneView, len(order))
	for li, name := range order {
		lv := laneView{Name: name, Note: laneNotes[name]}
		if lv.Name == "" {
			lv.Name = "berth"
		}
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
			if e.Dur > 0 {
				end = e.At + e.Dur // measured: done alongside the rest
			} else {
				for _, j := range idx[k+1:] {
					if evs[j].Dur == 0 { // the next event that is not a span
						end = evs[j].At
						break
					}
				}
			}
			b := box{Step: e, Group: Group(e.Name), Start: e.At - t0, Dur: end - e.At, lane: li}
			b.Short = e.Name
			if _, fn, ok := strings.Cut(e.Name, "."); ok {
				b.Short = fn
			}
			lv.Busy += b.Dur
			if name == LaneProgram && p.Ready == "" {
				p.Ready = ms(e.At - t0)
			}
			all = append(all, b)
		}
		lanes[li] = lv
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start < all[j].Start })
	tm := newTimeMap(all, t1-t0)
	// Each kind of work is a row of its lane; steps that overlap (spans) go to rows below.
	type subrows struct {
		rows []row
		ends []int64
	}
	rows := make([]map[string]*subrows, len(lanes))
	for i := range all {
		b := &all[i]
		b.ID = i + 1
		b.Left = tm.pos(b.Start)
		b.Width = tm.pos(b.Start+b.Dur) - b.Left
		r := rows[b.lane]
		if r == nil {
			r = map[string]*subrows{}
			rows[b.lane] = r
		}
		sr := r[b.Group]
		if sr == nil {
			sr = &subrows{}
			r[b.Group] = sr
		}
		k := 0
		for k < len(sr.ends) && sr.ends[k] > b.Start {
			k++
		}
		if k == len(sr.ends) {
			label := b.Group
			if k > 0 {
				label = ""
			}
			sr.rows = append(sr.rows, row{Group: label})
			sr.ends = append(sr.ends, 0)
		}
		sr.rows[k].Boxes = append(sr.rows[k].Boxes, *b)
		sr.ends[k] = b.Start + b.Dur
	}
	for li := range lanes {
		for _, g := range Groups {
			if sr := rows[li][g]; sr != nil {
				lanes[li].Rows = append(lanes[li].Rows, sr.rows...)
			}
		}
	}
	p.Lanes = lanes
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
	p.Ticks, p.Cuts = tm.ticks()
	return p
}

// A timeMap places times on the page's axis. Where no step of berth's own work runs for
// long (more than 50 ms and more than half of all the time berth works: the wait between
// create and start, a long program), the stretch is cut to a narrow band marked with its
// length, so that the work stays readable.
type timeMap struct {
	span  int64
	cuts  [][2]int64 // real [from, to) left out, in order
	units float64    // the axis's length: time kept plus a band per cut
	band  float64
}

func newTimeMap(all []box, span int64) timeMap {
	tm := timeMap{span: span}
	var iv [][2]int64
	for _, b := range all {
		if b.Lane == LaneWaiting || b.Lane == LaneProgram {
			iv = append(iv, [2]int64{b.Start, b.Start}) // where they begin counts
			continue
		}
		iv = append(iv, [2]int64{b.Start, b.Start + b.Dur})
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	var merged [][2]int64
	for _, v := range iv {
		if n := len(merged); n > 0 && v[0] <= merged[n-1][1] {
			if v[1] > merged[n-1][1] {
				merged[n-1][1] = v[1]
			}
			continue
		}
		merged = append(merged, v)
	}
	if len(merged) > 0 && merged[len(merged)-1][1] < span {
		merged = append(merged, [2]int64{span, span})
	}
	var work int64
	for _, m := range merged {
		work += m[1] - m[0]
	}
	var gaps int64
	for i := 1; i < len(merged); i++ {
		g := merged[i][0] - merged[i-1][1]
		if g > 50e6 && g > work/2 {
			tm.cuts = append(tm.cuts, [2]int64{merged[i-1][1], merged[i][0]})
			gaps += g
		}
	}
	kept := float64(span - gaps)
	if kept <= 0 {
		kept = 1
	}
	tm.band = kept / 20
	tm.units = kept + tm.band*float64(len(tm.cuts))
	return tm
}

// pos is where t (since the first step) lies on the axis, in percent.
func (tm timeMap) pos(t int64) float64 {
	u := 0.0
	prev := int64(0)
	for _, c := range tm.cuts {
		if t < c[0] {
			break
		}
		u += float64(c[0] - prev)
		if t < c[1] {
			u += tm.band * float64(t-c[0]) / float64(c[1]-c[0])
			return math.Round(u/tm.units*100000) / 1000
		}
		u += tm.band
		prev = c[1]
	}
	u += float64(t - prev)
	if tm.units <= 0 {
		return 0
	}
	return math.Round(u/tm.units*100000) / 1000
}

// ticks marks the time axis every 1, 2 or 5 times a power of ten, about eight times over the
// time kept, and each cut with its length.
func (tm timeMap) ticks() ([]tick, []cut) {
	kept := int64(tm.units - tm.band*float64(len(tm.cuts)))
	if kept <= 0 {
		return nil, nil
	}
	step := int64(0)
	for m := int64(1); step == 0; m *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if kept/(m*f) <= 8 {
				step = m * f
				break
			}
		}
	}
	var out []tick
	inCut := func(t int64) bool {
		for _, c := range tm.cuts {
			if t > c[0] && t < c[1] {
				return true
			}
		}
		return false
	}
	last := -1.0
	for t := int64(0); t <= tm.span; t += step {
		if inCut(t) {
			// Go on from the end of the cut, at the next multiple of step.
			for _, c := range tm.cuts {
				if t > c[0] && t < c[1] {
					t = (c[1]+step-1)/step*step - step
				}
			}
			continue
		}
		x := tm.pos(t)
		if last >= 0 && x-last < 4 {
			continue // too close to the one before (just after a cut)
		}
		last = x
		out = append(out, tick{Left: x, Label: strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", float64(t)/1e6), "0"), ".") + " ms"})
	}
	var cuts []cut
	for _, c := range tm.cuts {
		l := tm.pos(c[0])
		cuts = append(cuts, cut{Left: l, Width: tm.pos(c[1]) - l, Label: ms(c[1] - c[0])})
	}
	return out, cuts
}

func pct(n, span int64) float64 { return math.Round(float64(n)/float64(span)*100000) / 1000 }

func ms(ns int64) string { return fmt.Sprintf("%.3f ms", float64(ns)/1e6) }
