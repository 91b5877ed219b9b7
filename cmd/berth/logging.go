package main

import (
	"encoding/json"
	"fmt"
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

// logError reports a failed command: to the log, and to stderr where people and conmon read it.
func logError(err error) {
	// One line: containerd and podman show the last line of our output. Several failures
	// joined (layers applied in parallel, a delete's cleanup steps) are separated by "; ".
	msg := strings.ReplaceAll(strings.TrimRight(err.Error(), "\n"), "\n", "; ")
	if logToFile {
		logrus.Error(msg)
	}
	fmt.Fprintln(os.Stderr, "berth: "+msg)
}

// setupExplain prints each step on stderr: "step-name: what was done" on a terminal, or one
// JSON object per step with --log-format json.
func setupExplain(c *cli.Context) {
	if c.String("log-format") == "json" {
		enc := json.NewEncoder(os.Stderr)
		explain.SetSink(func(s explain.Step) {
			_ = enc.Encode(map[string]string{"level": "info", "step": s.Name, "msg": s.Detail,
				"time": time.Now().Format(time.RFC3339Nano)})
		})
		return
	}
	explain.SetSink(func(s explain.Step) {
		fmt.Fprintf(os.Stderr, "%-32s %s\n", s.Name, s.Detail)
	})
}
