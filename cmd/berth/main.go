// updatemaxprocs=0: berth processes live milliseconds; the runtime's goroutine that re-reads
// the cgroup CPU limit each second would only cost a thread at start (docs/performance.md).

//go:debug updatemaxprocs=0

// Command berth is an OCI container runtime: runc's command line, so that containerd and
// podman can call it in runc's place, plus OCI images run directly (berth run --image).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/libcontainer"
	"github.com/berth-project/berth/libcontainer/nsenter" // its constructor runs before Go starts
)

// version is berth's release; commit is set by the Makefile (git describe). runcLevel is the
// runc release whose command line and behaviour berth keeps: callers that compare the version
// on `--version`'s first line (go-runc reads "runc version X") must see a runc that has what
// they use, not 0.1.0, so that line is "runc version 1.1.5+berth.0.1.0" (semver build
// metadata, ignored in comparisons; runc's suite wants X.Y.Z first).
var (
	version   = "0.1.0"
	runcLevel = "1.1.5"
	commit    = "unknown"
)

func main() {
	// The init process skips the CLI entirely: it is on the hot path of every container.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.InitMain()
	}
	usernsChildStage()
	// A panic in the command's goroutine is a bug, but the caller (containerd, podman) must
	// still get one line and a failure status, not a Go stack trace.
	defer func() {
		if r := recover(); r != nil {
			logError(fmt.Errorf("internal error (please report): %s", strings.ReplaceAll(fmt.Sprint(r), "\n", " ")))
			os.Exit(1)
		}
	}()
	app := newApp()
	args, err := explainHTMLArgs(app, os.Args)
	if err == nil {
		err = app.Run(reorderArgs(app, args))
		if werr := finishTimeline(err); werr != nil {
			if err == nil {
				err = werr
			} else {
				logError(werr) // the command's own failure (or status) is what berth exits with
			}
		}
	}
	if err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(ex.code)
		}
		logError(err)
		var ce codedError
		if errors.As(err, &ce) {
			os.Exit(ce.code)
		}
		os.Exit(1)
	}
}

// exitError carries a container's exit status out of `run` and `exec`.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// codedError is a failure reported as usual but with an exit status other than 1: `exec`
// exits 255 when it fails itself, as runc does, so that a caller can tell that from the
// status of the process it ran.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		// go-runc's parseVersion reads "runc version X" from the first line, then the
		// "commit: " and "spec: " lines; runc's suite wants X to start with X.Y.Z.
		fmt.Printf("runc version %s+berth.%s\ncommit: berth-%s\nspec: %s\n", runcLevel, version, commit, specs.Version)
		// Checkpoint/restore is there when a working criu is: found, recent enough, and
		// passing its own check of this kernel.
		if v, err := criuStatus(c.String("criu")); err != nil {
			fmt.Printf("checkpoint: not supported (%s)\n", err)
		} else {
			fmt.Printf("checkpoint: supported (criu %s)\n", v)
		}
	}
	app := &cli.App{
		Name:                 "berth",
		Usage:                "Open Container Initiative runtime",
		Description:          appDescription,
		Version:              version,
		EnableBashCompletion: false,
		HideHelpCommand:      true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: defaultRoot(), Usage: "directory for container state"},
			&cli.StringFlag{Name: "log", Usage: "log file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages: each step berth and the container's init take"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "enable systemd cgroup support: cgroupsPath is \"slice:prefix:name\" and the container a transient scope"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "true, false or auto"},
			&cli.StringFlag{Name: "criu", Hidden: true},
			&cli.BoolFlag{Name: "explain", Usage: "narrate every step taken to build the container"},
			&cli.StringFlag{Name: "explain-html", Usage: "draw the steps on a timeline, one HTML page in `FILE` (also written --explain=html FILE; see docs/explain.md)"},
		},
		Before: setupGlobals,
		Commands: append([]*cli.Command{
			specCommand, createCommand, startCommand, runCommand, stateCommand, killCommand,
			deleteCommand, listCommand, imageCommand,
			updateCommand, execCommand,
			psCommand, pauseCommand, resumeCommand, eventsCommand, featuresCommand,
			checkpointCommand, restoreCommand,
		}, companionCommands...),
		ExitErrHandler: func(*cli.Context, error) {}, // main reports errors, once
		// A repeated flag (exec --env, --cap) takes each value whole, as runc's urfave/cli v1:
		// `--env A=b,c` is one variable, not "A=b" and "c".
		DisableSliceFlagSeparator: true,
	}
	setupHelp(app)
	handToCompanion(app)
	cacheFlagNames(app)
	return app
}

func setupGlobals(c *cli.Context) error {
	if err := setupLogging(c); err != nil {
		return err
	}
	cgroups.SystemdDriver = c.Bool("systemd-cgroup")
	if err := setupRootless(c); err != nil {
		return err
	}
	lane := "berth"
	if c.Args().Present() {
		lane += " " + c.Args().First()
	}
	explain.SetLane(lane, os.Getpid())
	if c.Bool("explain") {
		setupExplain(c)
	} else if c.Bool("debug") {
		debugSteps()
	}
	if f := c.String("explain-html"); f != "" {
		setupTimeline(f, explain.CurrentSink()) // --explain's or --debug's, if any: still printed
	}
	if t := nsenter.StartedAt(); t > 0 {
		// The first step, timed when the process began: the Go runtime's start and the
		// package initialisers show as its duration (bench/steps).
		explain.StepAt(t, "main.main", "berth started (its nsenter constructor ran; then the Go runtime, package initialisers, the CLI)")
	}
	return nil
}
