package integration

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// readTimeline reads the page `--explain=html` wrote and checks that it stands alone: no
// address outside it (no http(s), no protocol-relative URL), no script or style fetched.
func readTimeline(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	if m := regexp.MustCompile(`(?i)https?:|["'(=]//|<script|<link|<img|@import|url\(`).FindString(page); m != "" {
		t.Errorf("%s is not self-contained: it has %q", file, m)
	}
	return page
}

// lanesOf lists the page's lanes in order.
func lanesOf(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<div class="lane" data-lane="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// chromiumRender opens the page in headless chromium (Debian's), once: it returns the DOM
// chromium built and the screenshot it took.
func chromiumRender(t *testing.T, file string) (dom, shot string) {
	t.Helper()
	needTools(t, "chromium")
	dir := t.TempDir()
	shot = filepath.Join(dir, "timeline.png")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// As root chromium needs --no-sandbox; its own profile directory keeps it off $HOME.
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1400,760",
		"--screenshot="+shot, "--dump-dom", "file://"+file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out), shot
}

// checkScreenshot decodes the PNG and counts the pixels of each group's colour (the boxes
// are solid rectangles in them): every group in groups must have drawn some boxes.
func checkScreenshot(t *testing.T, shot string, groups ...string) {
	t.Helper()
	colours := map[string][3]uint32{ // internal/explain/html.go
		"namespaces": {0x1f, 0x77, 0xb4}, "cgroups": {0x2c, 0xa0, 0x2c}, "rootfs": {0x8c, 0x56, 0x4b},
		"image": {0xbc, 0xbd, 0x22}, "capabilities": {0xd6, 0x27, 0x28}, "exec": {0xff, 0x7f, 0x0e},
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 500 {
		t.Fatalf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	count := map[string]int{}
	white := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r > 250 && g > 250 && bl > 250 {
				white++
			}
			for name, c := range colours {
				if r == c[0] && g == c[1] && bl == c[2] {
					count[name]++
				}
			}
		}
	}
	if white > b.Dx()*b.Dy()*97/100 {
		t.Errorf("the screenshot is almost blank (%d white pixels of %d)", white, b.Dx()*b.Dy())
	}
	for _, g := range groups {
		// Only boxes have these colours exactly (the legend's chips are lighter); the
		// narrowest box is 2 by 14 pixels.
		if count[g] < 28 {
			t.Errorf("few %s pixels in the screenshot (%d): its boxes are not drawn", g, count[g])
		}
	}
	t.Logf("screenshot %dx%d, pixels by group colour: %v", b.Dx(), b.Dy(), count)
}

// keepScreenshot copies the screenshot into $BERTH_SCREENSHOTS (docs/ when the pictures of the
// documentation are remade: BERTH_SCREENSHOTS=$PWD/docs go test -run TestExplainHTML ./integration/).
func keepScreenshot(t *testing.T, shot, name string) {
	dir := os.Getenv("BERTH_SCREENSHOTS")
	if dir == "" {
		return
	}
	data, err := os.ReadFile(shot)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	if err != nil {
		t.Error(err)
	}
}

// `berth --explain=html FILE run` draws the container's start in one self-contained page,
// which chromium renders: the lanes (berth run, the init, the program) and the steps as boxes
// of each kind of work, with their narration.
func TestExplainHTMLRun(t *testing.T) {
	bundle := runcSpecBundle(t, "sh", "-c", "echo out")
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "run.html")
	r := e.berth("--explain=html", file, "run", "--bundle", bundle, "xh")
	if r.code != 0 || r.stdout != "out\n" || r.stderr != "" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	page := readTimeline(t, file)
	if l := lanesOf(page); strings.Join(l, ",") != "berth run,init,program" {
		t.Errorf("lanes %q", l)
	}
	dom, shot := chromiumRender(t, file)
	for _, want := range []string{`data-lane="berth run"`, `data-lane="init"`, `data-lane="program"`,
		`<div class="rlabel">rootfs</div>`, `class="box g-rootfs"`, `>pivotRoot</span>`, `>mountEntry</span>`,
		`class="box g-cgroups"`, `>writeFile</span>`, `class="box g-capabilities"`, `>setCapabilities</span>`,
		`class="box g-namespaces"`, `>startInit</span>`, `<b>rootfs.pivotRoot</b> <code>rootfs/pivot.go:`,
		"pivot_root " + rootfs, "Slowest steps", "the user's program was executed"} {
		if !strings.Contains(dom, want) {
			t.Errorf("chromium's DOM lacks %q", want)
		}
	}
	checkScreenshot(t, shot, "namespaces", "cgroups", "rootfs", "capabilities", "exec")
	keepScreenshot(t, shot, "explain-run.png")
}

// The same for run --image: the image's steps (the lookup, the store, the overlay) in a row of
// their own.
func TestExplainHTMLRunImage(t *testing.T) {
	app := filepath.Join(testImages(t), "img") + ":app"
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "image.html")
	r := e.berth("--explain=html", file, "run", "--image", app, "xhi")
	if r.code != 3 || r.stdout != "app\n" || r.stderr != "" {
		t.Fatalf("run --image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	page := readTimeline(t, file)
	if l := lanesOf(page); strings.Join(l, ",") != "berth run,init,program" {
		t.Errorf("lanes %q", l)
	}
	dom, shot := chromiumRender(t, file)
	for _, want := range []string{`data-lane="berth run"`, `data-lane="init"`, `<div class="rlabel">image</div>`,
		`class="box g-image"`, `>Open</span>`, `>mountOverlay</span>`, `>Store.AddLayers</span>`, `>ReleaseBundle</span>`,
		"mount -t overlay overlay -o lowerdir=", `>pivotRoot</span>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("chromium's DOM lacks %q", want)
		}
	}
	checkScreenshot(t, shot, "image", "rootfs", "cgroups")
	keepScreenshot(t, shot, "explain-run-image.png")
}

// create and start are two commands: create keeps its steps in the state directory, and
// start's page has the whole start, in the order the processes took part: create, the init,
// the waiting stage (berth-wait), start, the program. With --explain as well, the steps are
// also printed. No browser: the page's text is checked.
func TestExplainHTMLCreateStart(t *testing.T) {
	bundle := runcSpecBundle(t, "sleep", "100")
	e := newEnv(t)
	dir := t.TempDir()
	cf, sf := filepath.Join(dir, "create.html"), filepath.Join(dir, "start.html")
	r := e.mustBerth("--explain", "--explain=html", cf, "create", "--bundle", bundle, "xcs")
	narrated(t, "create with --explain and --explain=html", r.stderr, []string{"libcontainer.startInit", "rootfs.pivotRoot"})
	if l := lanesOf(readTimeline(t, cf)); strings.Join(l, ",") != "berth create,init,waiting stage" {
		t.Errorf("create's lanes %q", l)
	}
	e.mustBerth("--explain=html", sf, "start", "xcs")
	page := readTimeline(t, sf)
	if l := lanesOf(page); strings.Join(l, ",") != "berth create,init,waiting stage,berth start,program" {
		t.Errorf("start's lanes %q", l)
	}
	for _, want := range []string{">startInit</span>", ">pivotRoot</span>", ">waitForStart</span>", ">Start</span>"} {
		if !strings.Contains(page, want) {
			t.Errorf("start's page lacks %s", want)
		}
	}
	e.mustBerth("delete", "--force", "xcs")
	// A command that fails still draws what it did, and says why on the page.
	editRuncSpec(t, bundle, func(cfg map[string]any) { cfg["process"].(map[string]any)["args"] = []string{"no-such-program"} })
	ff := filepath.Join(dir, "failed.html")
	if r = e.berth("--explain=html", ff, "run", "--bundle", bundle, "xf"); r.code == 0 {
		t.Fatalf("run of a missing program succeeded")
	}
	page = readTimeline(t, ff)
	if !strings.Contains(page, `<p class="err">The command failed: `) || !strings.Contains(page, "no-such-program") || !strings.Contains(page, ">pivotRoot</span>") {
		t.Errorf("the page of a failed run lacks its error or its steps")
	}
	// A bad file: one line naming it, after the command did its work.
	r = e.berth("--explain=html", filepath.Join(dir, "no/such/dir.html"), "list")
	if r.code == 0 || !strings.Contains(r.stderr, "--explain=html "+filepath.Join(dir, "no/such/dir.html")) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("unwritable file: exit %d, stderr %q", r.code, r.stderr)
	}
	if r = e.berth("--explain=html"); r.code == 0 || !strings.Contains(r.stderr, "--explain=html needs a file") {
		t.Errorf("--explain=html without a file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// The init's steps are read on the host's monotonic clock even in a time namespace whose
// monotonic clock is a thousand seconds ahead (linux.timeOffsets): the picture spans
// milliseconds, not a thousand seconds. So are those of a process exec'd into it, which joins
// the namespace in its C constructor. run --detach draws every lane, the waiting stage too.
func TestExplainHTMLTimeNamespace(t *testing.T) {
	bundle := runcSpecBundle(t, "sleep", "100")
	editRuncSpec(t, bundle, func(cfg map[string]any) {
		linux := cfg["linux"].(map[string]any)
		linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "time"})
		linux["timeOffsets"] = map[string]any{"monotonic": map[string]any{"secs": 1000, "nanosecs": 0}}
	})
	e := newEnv(t)
	dir := t.TempDir()
	span := func(file string) {
		t.Helper()
		page := readTimeline(t, file)
		m := regexp.MustCompile(`steps in \d+ lanes over ([0-9.]+) ms`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s gives no span", file)
		}
		if len(m[1]) > 7 { // "99999.999" ms and more: a clock was not corrected
			t.Errorf("%s spans %s ms: steps are on the time namespace's clock", file, m[1])
		}
	}
	e.mustBerth("--explain=html", filepath.Join(dir, "run.html"), "run", "-d", "--bundle", bundle, "xtn")
	span(filepath.Join(dir, "run.html"))
	if l := lanesOf(readTimeline(t, filepath.Join(dir, "run.html"))); strings.Join(l, ",") != "berth run,init,waiting stage,program" {
		t.Errorf("run --detach: lanes %q", l)
	}
	e.mustBerth("--explain=html", filepath.Join(dir, "exec.html"), "exec", "xtn", "true")
	span(filepath.Join(dir, "exec.html"))
	if l := lanesOf(readTimeline(t, filepath.Join(dir, "exec.html"))); strings.Join(l, ",") != "berth exec,exec process,program" {
		t.Errorf("exec: lanes %q", l)
	}
	e.mustBerth("delete", "--force", "xtn")
}

// With a seccomp NOTIFY filter, whose listener berth hands to an agent while the init waits,
// the timeline is drawn as usual: the seccomp steps in their row, and nothing the init
// narrates gets between its filter and the hand-over.
func TestExplainHTMLSeccompNotify(t *testing.T) {
	agent := startContinueAgent(t)
	e := newEnv(t, "sh", "-c", "mkdir /tmp/x; echo mkdir=$?")
	e.spec.Root.Readonly = false
	e.spec.Linux.Seccomp = seccompProfile(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify})
	e.spec.Linux.Seccomp.ListenerPath = agent.sock
	e.writeSpec()
	file := filepath.Join(t.TempDir(), "seccomp.html")
	r := e.berth("--explain=html", file, "run", "--bundle", e.bundle, "xsn")
	if r.code != 0 || r.stdout != "mkdir=0\n" || r.stderr != "" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	page := readTimeline(t, file)
	for _, want := range []string{`<div class="rlabel">seccomp</div>`, `class="box g-seccomp"`, ">sendSeccompListener</span>", ">seccompStage.install</span>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
