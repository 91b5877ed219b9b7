package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// pauseCommand and resumeCommand are runc's: the cgroup freezer stops every process of the
// container, and `state` reports "paused" until resume.
var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "suspend all processes inside the container",
	ArgsUsage: "<container-id>",
	Description: `Freezes every process of a created or running container through its cgroup's
freezer. "container not running" for any other state, a paused container included.`,
	Action: func(c *cli.Context) error {
		return withContainer(c, (*libcontainer.Container).Pause)
	},
}

var resumeCommand = &cli.Command{
	Name:        "resume",
	Usage:       "resume all processes that have been previously paused",
	ArgsUsage:   "<container-id>",
	Description: `Thaws a paused container; "container not paused" for any other state.`,
	Action: func(c *cli.Context) error {
		return withContainer(c, (*libcontainer.Container).Resume)
	},
}

// withContainer runs f on the locked container named by the only argument.
func withContainer(c *cli.Context, f func(*libcontainer.Container) error) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	ct, err := libcontainer.Load(root(c), id)
	if err != nil {
		return err
	}
	defer ct.Close()
	return f(ct)
}
