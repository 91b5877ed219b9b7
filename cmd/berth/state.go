package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "print a container's state as JSON",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		id, err := oneID(c)
		if err != nil {
			return err
		}
		ct, err := libcontainer.LoadUnlocked(root(c), id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ct.OCI())
	},
}
