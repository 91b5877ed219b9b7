// Command steps times each step of one container's `berth run`: it runs the bundle (or, with
// -image, `run --image` of stored layers) n times
// with `--explain --log-format json` and reads the time of each step (taken where the step
// happened, in berth or in the init, the clock `--log-format json` prints), then prints, for
// each run of consecutive steps with the same name, the median time from its first step to
// the next group's first step. The first group ("main.main") starts when berth's C
// constructor ran, so it holds the Go runtime's start; the init's first "libcontainer.runInit" likewise holds
// the init's. The last row is from the last step to the exit of `berth run` (wait and delete).
// Explaining costs a little itself (each step is formatted and, in the init, sent over the
// pipe); compare rows, not the total, with bench/start. See docs/performance.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"time"
)

type step struct {
	Step string    `json:"step"`
	Msg  string    `json:"msg"`
	Time time.Time `json:"time"`
}

type group struct {
	name  string
	count int
	first string // the first step's message
	d     time.Duration
}

func runOnce(berth, root, bundle, image, id string) ([]group, time.Duration, error) {
	args := []string{"--root", root, "--explain", "--log-format", "json", "run", "--bundle", bundle, id}
	if image != "" {
		args = []string{"--root", root, "--explain", "--log-format", "json", "run", "--image", image, id, "true"}
	}
	cmd := exec.Command(berth, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	end := time.Now()
	var steps []step
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s step
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Step != "" {
			steps = append(steps, s)
		}
	}
	var gs []group
	for i, s := range steps {
		next := end
		if i+1 < len(steps) {
			next = steps[i+1].Time
		}
		if len(gs) > 0 && gs[len(gs)-1].name == s.Step {
			gs[len(gs)-1].count++
			gs[len(gs)-1].d += next.Sub(s.Time)
			continue
		}
		gs = append(gs, group{name: s.Step, count: 1, first: s.Msg, d: next.Sub(s.Time)})
	}
	if len(steps) > 0 {
		gs = append([]group{{name: "(exec of berth)", count: 1, first: "fork+execve, until the constructor", d: steps[0].Time.Sub(t0)}}, gs...)
	}
	return gs, end.Sub(t0), nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func main() {
	n := flag.Int("n", 20, "runs")
	bundle := flag.String("bundle", "", "bundle whose program is `true`")
	berth := flag.String("berth", "./berth", "berth binary")
	image := flag.String("image", "", "run --image this `layout:tag` instead of the bundle (its layers stored in -root)")
	root := flag.String("root", "", "berth's --root (default: a new temporary directory)")
	flag.Parse()
	if *root == "" {
		r, err := os.MkdirTemp("", "berth-steps-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(r)
		*root = r
	}
	var runs [][]group
	var totals []time.Duration
	for i := 0; i < *n; i++ {
		gs, total, err := runOnce(*berth, *root, *bundle, *image, fmt.Sprintf("st%d", i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "berth run:", err)
			os.Exit(1)
		}
		// Only runs with the same sequence of steps are comparable row by row.
		if len(runs) > 0 && !sameShape(runs[0], gs) {
			continue
		}
		runs = append(runs, gs)
		totals = append(totals, total)
	}
	fmt.Printf("berth run, one container, step by step (%d runs of %d alike, medians, ms; under --explain)\n\n", len(runs), *n)
	var sum time.Duration
	for k, g := range runs[0] {
		var ds []time.Duration
		for _, r := range runs {
			ds = append(ds, r[k].d)
		}
		m := median(ds)
		sum += m
		what := g.first
		if len(what) > 70 {
			what = what[:67] + "..."
		}
		if g.count > 1 {
			what = fmt.Sprintf("%dx: %s", g.count, what)
		}
		fmt.Printf("%7.2f  %-30s %s\n", float64(m.Microseconds())/1000, g.name, what)
	}
	fmt.Printf("%7.2f  (sum of the medians; median of the whole run %.2f)\n", float64(sum.Microseconds())/1000,
		float64(median(totals).Microseconds())/1000)
}

func sameShape(a, b []group) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name {
			return false
		}
	}
	return true
}
