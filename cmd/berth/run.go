package main

import (
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/libcontainer"
)

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container, and wait for it unless --detach",
	ArgsUsage: "<container-id> [command... (with --image)]",
	Flags: append(createFlags(),
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the container runs"},
		&cli.BoolFlag{Name: "keep", Usage: "keep the container's state after it exits"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "do not become a subreaper"},
	),
	Action: func(c *cli.Context) error {
		if c.String("image") != "" {
			if ran, err := imageUserNS(c); ran {
				return err
			}
		}
		detach := c.Bool("detach")
		sigs, err := foreground(c, detach)
		if err != nil {
			return err
		}
		l, err := createContainer(c, detach)
		if err != nil {
			return err
		}
		if detach {
			defer l.Close()
			// runc's run works from the bundle: its poststart hooks run there.
			l.HookDir = l.State.Bundle
			err := l.Start()
			if err != nil {
				_ = l.Delete(true)
			}
			return err
		}
		// Unlocked while it runs, so that kill, state and delete work on it meanwhile.
		l.Close()
		code := l.Wait(sigs)
		if !c.Bool("keep") {
			deleteExited(c, l.ID)
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	},
}

// foreground prepares a run or restore that waits for its container: berth becomes a
// subreaper (unless --no-subreaper), so that processes the container orphans outside a pid
// namespace come to it to be reaped, not to the host's init, and catches the signals it
// forwards. A detached one needs neither (nil).
func foreground(c *cli.Context, detach bool) (*libcontainer.Signals, error) {
	if detach {
		return nil, nil
	}
	if !c.Bool("no-subreaper") {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	return libcontainer.CatchSignals()
}

// deleteExited deletes a foreground container whose init has exited (run, and restore
// without --detach), its poststop hooks run from the bundle as with runc's run. A failure is
// logged: the command's status is the container's.
func deleteExited(c *cli.Context, id string) {
	ct, err := libcontainer.Load(root(c), id)
	if err != nil {
		return
	}
	ct.HookDir = ct.State.Bundle
	if err := ct.Delete(true); err != nil {
		logError(err)
	}
	ct.Close()
}
