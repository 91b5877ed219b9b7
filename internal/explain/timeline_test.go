package explain

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestTimelineLayout(t *testing.T) {
	ms := int64(1e6)
	steps := []Step{
		{Name: "cgroups.Create", Detail: "mkdir", At: 100 * ms, Lane: "berth run", Pid: 10},
		{Name: "libcontainer.startInit", Detail: "clone", At: 101 * ms, Lane: "berth run", Pid: 10},
		{At: 102 * ms, Lane: "berth run", Pid: 10}, // idle: waits for the init
		{Name: "rootfs.pivotRoot", Detail: "pivot_root <x> & \"y\"", At: 103 * ms, Lane: LaneInit, Pid: 11},
		{Name: "libcontainer.setCapabilities", Detail: "capset", At: 105 * ms, Lane: LaneInit, Pid: 11},
		{At: 106 * ms, Lane: LaneInit, Pid: 11},
		{Name: "libcontainer.execUser", Detail: "sh", At: 107 * ms, Lane: LaneProgram, Pid: 11},
		{At: 120 * ms, Lane: LaneProgram, Pid: 11},
	}
	p := layout("run x", "", steps)
	if len(p.Lanes) != 3 || p.Lanes[0].Name != "berth run" || p.Lanes[1].Name != LaneInit || p.Lanes[2].Name != LaneProgram {
		t.Fatalf("lanes: %+v", p.Lanes)
	}
	if len(p.Steps) != 5 {
		t.Fatalf("%d steps, want 5 (idle marks are not steps)", len(p.Steps))
	}
	durs := map[string]int64{}
	for _, b := range p.Steps {
		durs[b.Name] = b.Dur
	}
	// A step lasts until the next event of its lane; an idle mark ends it.
	want := map[string]int64{"cgroups.Create": ms, "libcontainer.startInit": ms, "rootfs.pivotRoot": 2 * ms,
		"libcontainer.setCapabilities": ms, "libcontainer.execUser": 13 * ms}
	for n, d := range want {
		if durs[n] != d {
			t.Errorf("%s lasts %d, want %d", n, durs[n], d)
		}
	}
	if p.Ready != "7.000 ms" || p.Span != "20.000 ms" {
		t.Errorf("ready %q span %q", p.Ready, p.Span)
	}
	// The program is not berth's work: the slowest step is pivotRoot.
	if p.Slowest[0].Name != "rootfs.pivotRoot" {
		t.Errorf("slowest: %+v", p.Slowest[0])
	}
	if g := p.Lanes[1].Rows; len(g) != 2 || g[0].Group != "rootfs" || g[1].Group != "capabilities" {
		t.Errorf("init rows: %+v", g)
	}

	tl := &Timeline{Title: "berth run x", Steps: steps}
	var buf bytes.Buffer
	if err := tl.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if regexp.MustCompile(`(?i)(https?:|//[a-z])`).MatchString(page) {
		t.Errorf("the page refers to something outside it:\n%s", page)
	}
	for _, s := range []string{`data-lane="berth run"`, `data-lane="init"`, `data-lane="program"`, ">pivotRoot<",
		"<b>rootfs.pivotRoot</b>", "pivot_root &lt;x&gt; &amp; &#34;y&#34;", `href="#s3"`, `id="s3"`, "left:15.000%;width:10.000%"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

// Steps measured alongside others (Spanf: layers applied in parallel) keep their own length,
// do not end the step before them, and are drawn on rows of their own when they overlap.
func TestTimelineSpans(t *testing.T) {
	ms := int64(1e6)
	p := layout("image", "", []Step{
		{Name: "image.Open", At: 0, Lane: "b"},
		{Name: "image.Store.addLayer", At: 1 * ms, Dur: 8 * ms, Lane: "b"},
		{Name: "image.Store.addLayer", At: 2 * ms, Dur: 3 * ms, Lane: "b"},
		{Name: "image.Store.addLayer", At: 6 * ms, Dur: 1 * ms, Lane: "b"},
		{Name: "image.Prepare", At: 10 * ms, Lane: "b"},
		{At: 11 * ms, Lane: "b"},
	})
	var durs []int64
	for _, b := range p.Steps {
		durs = append(durs, b.Dur/ms)
	}
	if fmt.Sprint(durs) != "[10 8 3 1 1]" {
		t.Errorf("durations %v", durs)
	}
	rows := p.Lanes[0].Rows
	// Open lasts until Prepare; the first layer below it, the two others below that.
	if len(rows) != 3 || rows[0].Group != "image" || rows[1].Group != "" || len(rows[0].Boxes) != 2 || len(rows[1].Boxes) != 1 || len(rows[2].Boxes) != 2 {
		t.Errorf("rows: %+v", rows)
	}
}

func TestTimelineKeepsOneIdleMark(t *testing.T) {
	var tl Timeline
	for _, s := range []Step{{Name: "a.b", At: 1, Lane: "x"}, {At: 2, Lane: "x"}, {At: 3, Lane: "x"}, {Name: "a.c", At: 3, Lane: "y"}, {At: 4, Lane: "x"}, {Name: "a.d", At: 5, Lane: "x"}, {At: 6, Lane: "x"}} {
		tl.Add(s)
	}
	if n := len(tl.Snapshot()); n != 5 {
		t.Errorf("%d events kept, want 5: %+v", n, tl.Snapshot())
	}
}

func TestGroup(t *testing.T) {
	for name, want := range map[string]string{
		"rootfs.pivotRoot": "rootfs", "cgroups.writeFile": "cgroups", "namespaces.EnterThread": "namespaces",
		"libcontainer.setCapabilities": "capabilities", "libcontainer.seccompStage.install": "seccomp",
		"seccomp.Compile": "seccomp", "libcontainer.execUser": "exec", "libcontainer.startInit": "namespaces",
		"image.mountOverlay": "image", "libcontainer.destroy": "lifecycle",
	} {
		if g := Group(name); g != want {
			t.Errorf("Group(%s) = %s, want %s", name, g, want)
		}
	}
}

func TestMonotonicOffset(t *testing.T) {
	if n := parseMonotonicOffset("monotonic 7 500\nboottime 0 0\n"); n != 7e9+500 {
		t.Errorf("offset %d", n)
	}
	if n := parseMonotonicOffset("1 -2 0\n7 0 0\n"); n != -2e9 {
		t.Errorf("numeric clock ids: %d", n)
	}
}

func TestTicks(t *testing.T) {
	k, cuts := newTimeMap(nil, 23e6).ticks()
	if len(k) < 4 || len(k) > 9 || k[1].Label != "5 ms" || len(cuts) != 0 {
		t.Errorf("ticks of 23 ms: %+v %+v", k, cuts)
	}
}

// create, then start five seconds later: the wait is cut short on the axis.
func TestTimelineCutsLongWaits(t *testing.T) {
	ms := int64(1e6)
	steps := []Step{
		{Name: "cgroups.Create", At: 0, Lane: "berth create"},
		{Name: "rootfs.pivotRoot", At: 2 * ms, Lane: LaneInit},
		{At: 9 * ms, Lane: LaneInit},
		{At: 10 * ms, Lane: "berth create"},
		{Name: "libcontainer.waitForStart", At: 9 * ms, Lane: LaneWaiting},
		{Name: "libcontainer.Start", At: 5000 * ms, Lane: "berth start"},
		{At: 5000*ms + 500000, Lane: LaneWaiting},
		{Name: "libcontainer.waitForStart", At: 5000*ms + 500000, Lane: LaneProgram},
		{At: 5001 * ms, Lane: "berth start"},
	}
	p := layout("start", "", steps)
	if len(p.Cuts) != 1 || p.Cuts[0].Label != "4990.000 ms" {
		t.Fatalf("cuts: %+v", p.Cuts)
	}
	for _, b := range p.Steps {
		switch b.Name {
		case "rootfs.pivotRoot": // 7 ms of 11 kept, and a band of 11/20
			if b.Width < 50 || b.Width > 70 {
				t.Errorf("pivotRoot is %.1f%% wide", b.Width)
			}
		case "libcontainer.Start":
			if b.Left < 85 || b.Left > 100 {
				t.Errorf("start's step at %.1f%%", b.Left)
			}
		}
	}
	for _, k := range p.Ticks {
		if k.Left > p.Cuts[0].Left && k.Left < p.Cuts[0].Left+p.Cuts[0].Width {
			t.Errorf("a tick inside the cut: %+v", k)
		}
	}
}

// TestTimelineHTMLEscapes: every text on the page comes from outside (a config's paths and
// hook names, an error), so none of it may become markup, in text or in an attribute.
func TestTimelineHTMLEscapes(t *testing.T) {
	bad := `"><script>x</script>&'`
	tl := &Timeline{Title: bad, Err: bad, Steps: []Step{
		{Name: "rootfs." + bad, Detail: bad, Lane: bad, At: 0},
		{Name: "hooks." + bad, Detail: bad, Lane: bad, At: 1e6, Where: bad},
		{At: 2e6, Lane: bad},
	}}
	var buf bytes.Buffer
	if err := tl.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script") || strings.Contains(page, `&'`) {
		t.Fatalf("a value became markup:\n%s", page)
	}
	if n := strings.Count(page, "&#34;&gt;&lt;script&gt;x&lt;/script&gt;&amp;&#39;"); n < 8 {
		t.Fatalf("the value is written escaped %d times, want every place it appears:\n%s", n, page)
	}
}
