package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list containers",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print ids only"},
	},
	Action: func(c *cli.Context) error {
		cts, err := libcontainer.List(root(c))
		if err != nil {
			return err
		}
		if c.Bool("quiet") {
			for _, ct := range cts {
				fmt.Println(ct.ID)
			}
			return nil
		}
		states := make([]libcontainer.OCIState, 0, len(cts))
		for _, ct := range cts {
			st := ct.OCI()
			st.Owner = ct.OwnerName() // as runc's list: the state directory's owner
			states = append(states, st)
		}
		switch c.String("format") {
		case "json":
			return json.NewEncoder(os.Stdout).Encode(states)
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle,
					s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		default:
			return fmt.Errorf("--format: %q must be table or json", c.String("format"))
		}
	},
}
