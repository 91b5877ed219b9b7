package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/internal/explain"
)

// timeline collects the steps for `--explain=html FILE` (nil without it); timelineFile is FILE.
var (
	timeline     *explain.Timeline
	timelineFile string
)

// timelineSaved is where `create --explain=html` leaves its steps in the container's state
// directory, for `start --explain=html` to draw the whole start (delete removes it).
const timelineSaved = "explain-timeline.json"

// explainHTMLArgs turns `--explain=html FILE` among the global flags (before the command)
// into `--explain-html=FILE`: urfave/cli reads no value after a flag written with "=".
func explainHTMLArgs(app *cli.App, args []string) ([]string, error) {
	out := append([]string(nil), args[:1]...)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return append(out, args[i:]...), nil // the command: the rest is its own
		}
		name := strings.TrimLeft(a, "-")
		if name == "explain=html" {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return nil, errors.New("--explain=html needs a file: berth --explain=html FILE run ...")
			}
			out = append(out, "--explain-html="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
		if !strings.Contains(a, "=") && takesValue(app.Flags, name) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out, nil
}

// setupTimeline starts collecting the steps, with their times, for the HTML page; with
// --explain or --debug as well (also), they are printed or logged too.
func setupTimeline(file string, also explain.Sink) {
	timelineFile = file
	timeline = &explain.Timeline{Title: "berth " + strings.Join(withoutPageFlag(os.Args[1:]), " ")}
	explain.SetTiming(true)
	explain.SetSink(func(s explain.Step) {
		timeline.Add(s)
		if also != nil && !s.Idle() {
			also(s)
		}
	})
}

// withoutPageFlag is the command line without the flag that asked for the page (the page's
// title).
func withoutPageFlag(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch n := strings.TrimLeft(args[i], "-"); {
		case n == "explain=html" || n == "explain-html":
			i++
		case strings.HasPrefix(n, "explain-html="):
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// finishTimeline writes the page, once the command is over (err: how it failed).
func finishTimeline(err error) error {
	if timeline == nil {
		return nil
	}
	explain.Idle() // the end of berth's own lane
	var ex exitError
	if err != nil && !errors.As(err, &ex) {
		timeline.Err = err.Error()
	}
	tmp := timelineFile + ".tmp"
	f, ferr := os.Create(tmp)
	if ferr == nil {
		ferr = timeline.WriteHTML(f)
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
	}
	if ferr == nil {
		ferr = os.Rename(tmp, timelineFile)
	}
	if ferr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("--explain=html %s: %w", timelineFile, ferr)
	}
	return nil
}

// saveTimeline keeps create's steps in the container's state directory dir.
func saveTimeline(dir string) {
	if timeline == nil {
		return
	}
	explain.Idle()
	data, err := json.Marshal(timeline.Snapshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, timelineSaved), data, 0o600)
	}
	if err != nil {
		logError(fmt.Errorf("--explain=html: keeping the steps of create: %w", err))
	}
}

// loadTimeline adds the steps create saved in dir to start's, if it saved any.
func loadTimeline(dir string) {
	if timeline == nil {
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, timelineSaved))
	if err != nil {
		return
	}
	var steps []explain.Step
	if json.Unmarshal(data, &steps) == nil {
		for _, s := range steps {
			timeline.Add(s)
		}
	}
}
