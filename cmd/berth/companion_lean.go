//go:build lean

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/internal/companion"
)

// The lean build has no go-criu (internal/companion): its companion, the full build, does
// checkpoint and restore in this process's place (exec: the same pid, so a caller waiting for
// berth waits for it) and tells criu's status.

var companionCommands []*cli.Command

func checkpointAction(c *cli.Context) error { return companion.Exec(os.Args) }

func restoreAction(c *cli.Context) error { return companion.Exec(os.Args) }

// handToCompanion gives the companion `image unpack` and `image load` too: they decompress
// every layer of an image, which the companion does in-process, faster than one filter a
// layer (decompress_lean.go: the filter stays for a create --image whose layers are not
// stored yet).
func handToCompanion(app *cli.App) {
	for _, c := range app.Commands {
		if c.Name != "image" {
			continue
		}
		for _, sub := range c.Subcommands {
			if sub.Name == "unpack" || sub.Name == "load" {
				sub.Action = func(*cli.Context) error { return companion.Exec(os.Args) }
			}
		}
	}
}

// criuStatus is the companion's answer (companion_full.go): a version line, then an error
// line when checkpoint/restore does not work here.
func criuStatus(path string) (string, error) {
	cmd, err := companion.Command(companion.CriuStatus, "--", path) // a path may start with "-"
	if err != nil {
		return "", err
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("companion: %w", err)
	}
	version, why, _ := strings.Cut(strings.TrimSuffix(string(out), "\n"), "\n")
	if why != "" {
		return version, errors.New(why)
	}
	return version, nil
}
