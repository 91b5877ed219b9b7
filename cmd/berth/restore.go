//go:build !lean

package main

import (
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// restoreAction is restore (criu_cmds.go) in the full build.
func restoreAction(c *cli.Context) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		logrus.Warn("berth restore is untested with rootless containers")
	}
	o, err := criuOptions(c)
	if err != nil {
		return err
	}
	o.LsmProfile = c.String("lsm-profile")
	o.LsmMountContext = c.String("lsm-mount-context")
	bundle := c.String("bundle")
	if bundle == "" {
		if bundle, err = os.Getwd(); err != nil {
			return err
		}
	}
	if bundle, err = filepath.Abs(bundle); err != nil {
		return err
	}
	spec, err := libcontainer.LoadSpec(bundle)
	if err != nil {
		return err
	}
	pidFile := c.String("pid-file")
	if pidFile != "" {
		if pidFile, err = filepath.Abs(pidFile); err != nil {
			return err
		}
	}
	detach := c.Bool("detach")
	sigs, err := foreground(c, detach)
	if err != nil {
		return err
	}
	l, err := libcontainer.Restore(libcontainer.RestoreOpts{
		CreateOpts: libcontainer.CreateOpts{
			Root: root(c), ID: id, Bundle: bundle, Spec: spec, PidFile: pidFile,
			ConsoleSocket: c.String("console-socket"), NoPivot: c.Bool("no-pivot"), Detach: detach,
		},
		Criu: o,
	})
	if err != nil {
		return err
	}
	l.Close()
	if detach {
		return nil
	}
	// As run: wait for the restored init (criu restored it as our child), then delete.
	code := l.Wait(sigs)
	deleteExited(c, l.ID)
	if code != 0 {
		return exitError{code}
	}
	return nil
}
