package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// eventsCommand is runc's `events`: one JSON object per line, {"type":"stats","id":ID,
// "data":{...}} in runc's field names, or {"type":"oom","id":ID}.
var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
	ArgsUsage: "<container-id>",
	Description: `Prints the container's stats every --interval and an "oom" event each time the
kernel OOM-kills one of its processes, until the container stops. With --stats, prints the
stats once and exits.`,
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "set the stats collection interval"},
		&cli.BoolFlag{Name: "stats", Usage: "display the container's stats then exit"},
	},
	Action: func(c *cli.Context) error {
		id, err := oneID(c)
		if err != nil {
			return err
		}
		// Unlocked: a stream may last as long as the container; it only reads.
		ct, err := libcontainer.LoadUnlocked(root(c), id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		emit := func(e *libcontainer.Event) error { return enc.Encode(e) }
		if c.Bool("stats") {
			e, err := ct.StatsEvent()
			if err != nil {
				return err
			}
			return emit(e)
		}
		return ct.Events(c.Duration("interval"), emit, func(err error) { logrus.Error(err) })
	},
}
