// Command berth is an OCI container runtime: runc's command line, so that containerd and
// podman can call it in runc's place, plus OCI images run directly (berth run --image).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
	_ "github.com/berth-project/berth/libcontainer/nsenter" // runs before Go starts in `berth init`
)

// version is set by the Makefile.
var version = "0.1.0-dev"

func main() {
	// The init process skips the CLI entirely: it is on the hot path of every container.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.InitMain()
	}
	// A panic in the command's goroutine is a bug, but the caller (containerd, podman) must
	// still get one line and a failure status, not a Go stack trace.
	defer func() {
		if r := recover(); r != nil {
			logError(fmt.Errorf("internal error (please report): %s", strings.ReplaceAll(fmt.Sprint(r), "\n", " ")))
			os.Exit(1)
		}
	}()
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(ex.code)
		}
		logError(err)
		os.Exit(1)
	}
}

// exitError carries a container's exit status out of `run` and `exec`.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		// go-runc parses "runc version X" from the first line; tools probe for it.
		fmt.Printf("runc version %s (berth)\ncommit: berth-%s\nspec: 1.2.0\n", version, version)
	}
	return &cli.App{
		Name:                 "berth",
		Usage:                "run OCI bundles and images as containers (runc-compatible)",
		Version:              version,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: libcontainer.DefaultRoot, Usage: "directory for container state"},
			&cli.StringFlag{Name: "log", Usage: "log file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "manage cgroups through systemd (not supported)"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "true, false or auto"},
			&cli.BoolFlag{Name: "explain", Usage: "narrate every step taken to build the container"},
			&cli.StringFlag{Name: "criu", Hidden: true},
		},
		Before: setupGlobals,
		Commands: []*cli.Command{
			specCommand, createCommand, startCommand, runCommand, stateCommand, killCommand,
			deleteCommand, listCommand, imageCommand,
			updateCommand, execCommand,
			psCommand, pauseCommand, resumeCommand, eventsCommand, featuresCommand,
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main reports errors, once
	}
}

func setupGlobals(c *cli.Context) error {
	if err := setupLogging(c); err != nil {
		return err
	}
	if c.Bool("systemd-cgroup") {
		return errors.New("--systemd-cgroup: systemd cgroup management is not supported; use cgroupfs (drop the flag)")
	}
	switch c.String("rootless") {
	case "true", "false", "auto":
	default:
		return fmt.Errorf("--rootless: %q must be true, false or auto", c.String("rootless"))
	}
	if c.Bool("explain") {
		setupExplain(c)
	}
	return nil
}
