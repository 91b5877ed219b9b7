//go:build !lean

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/companion"
)

// handToCompanion is for the lean build: the full build does everything itself.
func handToCompanion(*cli.App) {}

// companionCommands are what the lean build runs this, the full build, for besides checkpoint
// and restore (internal/companion): hidden, since no one else calls them.
var companionCommands = []*cli.Command{
	{
		Name:   companion.Decompress,
		Hidden: true,
		Usage:  "a compressed layer on stdin, its tar stream on stdout",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "ahead"}},
		Action: func(c *cli.Context) error {
			if err := image.DecompressTo(os.Stdout, os.Stdin, c.Bool("ahead")); err != nil {
				// The error's own text, which the lean build returns as its error.
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return nil
		},
	},
	{
		Name:      companion.CriuStatus,
		Hidden:    true,
		Usage:     "criu's version on the first line, and on the second why checkpoint/restore does not work here",
		ArgsUsage: "<criu path>",
		Action: func(c *cli.Context) error {
			v, err := criuStatus(c.Args().First())
			fmt.Println(v)
			if err != nil {
				fmt.Println(err)
			}
			return nil
		},
	},
}
