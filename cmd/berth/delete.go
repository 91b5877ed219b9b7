package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "remove a container (a running one only with --force)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it runs"},
	},
	Action: func(c *cli.Context) error {
		id, err := oneID(c)
		if err != nil {
			return err
		}
		ct, err := libcontainer.Load(root(c), id)
		if err != nil {
			var ne libcontainer.ErrNotExist
			if errors.As(err, &ne) {
				// As runc: clear what an aborted create or delete of that id left; and
				// delete --force of a missing container succeeds.
				libcontainer.RemoveAbandoned(root(c), id)
				if c.Bool("force") {
					return nil
				}
			}
			return err
		}
		defer ct.Close()
		return ct.Delete(c.Bool("force"))
	},
}
