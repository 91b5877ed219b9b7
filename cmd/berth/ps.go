package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// psCommand is runc's `ps`: --format json prints the host pids of the container's cgroup
// (go-runc's Ps reads it), table runs the host's ps and keeps the container's lines.
var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "display the processes running inside a container",
	ArgsUsage: "<container-id> [ps options]",
	Description: `With --format table (the default) the host's ps runs with the given options
(-ef when there are none) and only the header and the lines of the container's processes
are printed; ps's output must have a PID column. With --format json, a JSON array of host
pids.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "select one of: table or json"},
	},
	Action: func(c *cli.Context) error {
		// Flags stop at the first argument, so "ps ID -o pid,comm" reaches ps intact.
		if c.NArg() < 1 {
			return errors.New(`"ps" requires a minimum of 1 argument: <container-id> [ps options]`)
		}
		id := c.Args().First()
		ct, err := libcontainer.LoadUnlocked(root(c), id)
		if err != nil {
			return err
		}
		pids, err := ct.Processes()
		if err != nil {
			return err
		}
		switch c.String("format") {
		case "table":
		case "json":
			// A nil list prints null, as runc's does for a stopped container.
			return json.NewEncoder(os.Stdout).Encode(pids)
		default:
			return errors.New("invalid format option")
		}
		psArgs := c.Args().Slice()[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		out, err := exec.Command("ps", psArgs...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		lines := strings.Split(string(out), "\n")
		pidCol := slices.Index(strings.Fields(lines[0]), "PID")
		if pidCol < 0 {
			return errors.New("couldn't find PID field in ps output")
		}
		fmt.Println(lines[0])
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if pidCol >= len(f) {
				return fmt.Errorf("unable to parse pid: %q has no column %d", l, pidCol+1)
			}
			p, err := strconv.Atoi(f[pidCol])
			if err != nil {
				return fmt.Errorf("unable to parse pid: %w", err)
			}
			if slices.Contains(pids, p) {
				fmt.Println(l)
			}
		}
		return nil
	},
}
