package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/libcontainer"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process in the container"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 || c.NArg() > 2 {
			return fmt.Errorf("usage: berth kill [--all] <container-id> [signal]")
		}
		// The container first, as runc: a missing one says so whatever the signal.
		ct, err := libcontainer.Load(root(c), c.Args().Get(0))
		if err != nil {
			return err
		}
		defer ct.Close()
		sig := unix.SIGTERM
		if c.NArg() == 2 {
			s, err := parseSignal(c.Args().Get(1))
			if err != nil {
				return err
			}
			sig = s
		}
		return ct.Signal(sig, c.Bool("all"))
	},
}

// parseSignal accepts "9", "KILL" and "SIGKILL". Any number goes to kill(2) as it is, as
// with runc: 0 checks that the process exists (`kill --all ID 0` after the container
// stopped succeeds), and the kernel refuses a number that is no signal.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
