package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// specCommand is `runc spec`: runc 1.1.5's default config.json, written as runc writes it
// (tab-indented, no newline at the end), into the bundle directory.
var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "write a default config.json (like runc spec)",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "directory to write config.json in"},
		&cli.BoolFlag{Name: "rootless", Usage: "a config for an unprivileged user"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return fmt.Errorf("%s: %q requires exactly 0 argument(s)", filepath.Base(os.Args[0]), "spec")
		}
		var spec *specs.Spec
		if c.Bool("rootless") {
			spec = libcontainer.RootlessSpec()
		} else {
			spec = libcontainer.RuncSpec()
		}
		const name = "config.json"
		path := filepath.Join(c.String("bundle"), name)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("File %s exists. Remove it first", name)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o666)
	},
}
