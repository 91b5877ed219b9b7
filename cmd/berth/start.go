package main

import (
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "run the program of a created container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		id, err := oneID(c)
		if err != nil {
			return err
		}
		ct, err := libcontainer.Load(root(c), id)
		if err != nil {
			return err
		}
		defer ct.Close()
		loadTimeline(filepath.Join(root(c), id)) // create's steps, if it drew them
		return ct.Start()
	},
}
