package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// createFlags are shared by create and run, as in runc.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the bundle (default: current directory)"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the init process's pid to this file"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "move-mount and chroot instead of pivot_root (for ramfs roots)"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "keep the caller's session keyring"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many descriptors (from fd 3) to the container"},
		&cli.StringFlag{Name: "image", Usage: "run an OCI image (LAYOUT[:TAG]) on an overlay of its stored layers; args after the id replace its Cmd"},
		platformFlag,
	}
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container; its program waits until `start`",
	ArgsUsage: "<container-id> [command... (with --image)]",
	Flags:     createFlags(),
	Action: func(c *cli.Context) error {
		if c.String("image") != "" {
			if ran, err := imageUserNS(c); ran {
				return err
			}
		}
		l, err := createContainer(c, true)
		if err != nil {
			return err
		}
		saveTimeline(filepath.Join(root(c), l.ID))
		l.Close()
		return nil
	},
}

// createContainer is the shared body of create and run.
func createContainer(c *cli.Context, detach bool) (*libcontainer.Launched, error) {
	if c.String("image") != "" {
		return createFromImage(c, detach)
	}
	id, err := oneID(c)
	if err != nil {
		return nil, err
	}
	bundle := c.String("bundle")
	if bundle == "" {
		if bundle, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	if bundle, err = filepath.Abs(bundle); err != nil {
		return nil, err
	}
	if n := c.Int("preserve-fds"); n < 0 {
		return nil, fmt.Errorf("--preserve-fds: %d must not be negative", n)
	}
	spec, err := libcontainer.LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	pidFile := c.String("pid-file")
	if pidFile != "" {
		if pidFile, err = filepath.Abs(pidFile); err != nil {
			return nil, err
		}
	}
	return libcontainer.Create(libcontainer.CreateOpts{
		Root: root(c), ID: id, Bundle: bundle, Spec: spec, PidFile: pidFile,
		ConsoleSocket: c.String("console-socket"), NoPivot: c.Bool("no-pivot"),
		NoNewKeyring: c.Bool("no-new-keyring"), PreserveFds: c.Int("preserve-fds"), Detach: detach,
	})
}

func root(c *cli.Context) string {
	r, err := filepath.Abs(c.String("root"))
	if err != nil {
		return c.String("root")
	}
	return r
}

// oneID reads the single container-id argument every lifecycle command takes.
func oneID(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", errors.New("missing container id (usage: berth " + c.Command.Name + " [options] <container-id>)")
	case 1:
		return c.Args().First(), libcontainer.ValidateID(c.Args().First())
	default:
		return "", fmt.Errorf("%s takes one container id, got %d arguments", c.Command.Name, c.NArg())
	}
}
