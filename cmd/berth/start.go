package main

import (
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
		return ct.Start()
	},
}
