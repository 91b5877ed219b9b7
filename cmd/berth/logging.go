package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/internal/explain"
)

var logToFile bool

// setupLogging sends logs where --log says in the --log-format asked for. containerd reads the
// last "error" line of a JSON log to explain a failure, so errors always go there too.
func setupLogging(c *cli.Context) error {
	logrus.SetOutput(os.Stderr)
	switch c.String("log-format") {
	case "text":
		logrus.SetFormatter(&logrus.TextFormatter{DisableColors: true})
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	default:
		return fmt.Errorf("--log-format: %q must be text or json", c.String("log-format"))
	}
	if c.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	if p := c.String("log"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log %s: %w", p, err)
		}
		logrus.SetOutput(f)
		logToFile = true
	}
	return nil
}

// logError reports a failed command: to the log, and to stderr where people and conmon read
// it. With --log, stderr gets the bare message, as from runc; without, it is "berth: " and
// the message (runc writes a log line there instead).
func logError(err error) {
	// One line: containerd and podman show the last line of our output. Several failures
	// joined (layers applied in parallel, a delete's cleanup steps) are separated by "; ".
	msg := strings.ReplaceAll(strings.TrimRight(err.Error(), "\n"), "\n", "; ")
	if logToFile {
		logrus.Error(msg)
		fmt.Fprintln(os.Stderr, msg)
		return
	}
	fmt.Fprintln(os.Stderr, "berth: "+msg)
}

// setupExplain prints each step on stderr: "step-name: what was done" on a terminal, or one
// JSON object per step with --log-format json. With --log-format json and --log (how
// containerd's shim and podman call a runtime) the steps go to the log file instead: stderr
// of `create` is the container's own, and containerd keeps only an error line from the log.
func setupExplain(c *cli.Context) {
	if c.String("log-format") == "json" {
		out := io.Writer(os.Stderr)
		if logToFile {
			out = logrus.StandardLogger().Out
		}
		enc := json.NewEncoder(out)
		explain.SetSink(func(s explain.Step) {
			if s.Idle() {
				return
			}
			_ = enc.Encode(map[string]string{"level": "info", "step": s.Name, "msg": s.Detail,
				"time": explain.WallTime(s.At).Format(time.RFC3339Nano)})
		})
		return
	}
	explain.SetSink(func(s explain.Step) {
		if s.Idle() {
			return
		}
		fmt.Fprintf(os.Stderr, "%-32s %s\n", s.Name, s.Detail)
	})
}

// debugSteps sends every step berth and the container's init take to the log at level
// debug (--debug without --explain): the same narration, one log entry a step, with the
// step's function in the "step" field.
func debugSteps() {
	explain.SetSink(func(s explain.Step) {
		if s.Idle() {
			return
		}
		logrus.WithField("step", s.Name).Debug(s.Detail)
	})
}
