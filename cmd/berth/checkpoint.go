//go:build !lean

package main

import (
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
	"github.com/berth-project/berth/libcontainer/criu"
)

// checkpointAction is checkpoint (criu_cmds.go) in the full build.
func checkpointAction(c *cli.Context) error {
	id, err := oneID(c)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		logrus.Warn("berth checkpoint is untested with rootless containers")
	}
	o, err := criuOptions(c)
	if err != nil {
		return err
	}
	o.ParentPath = c.String("parent-path")
	o.LeaveRunning = c.Bool("leave-running")
	o.PreDump = c.Bool("pre-dump")
	o.StatusFd = c.Int("status-fd")
	o.PageServer = c.String("page-server")
	ct, err := libcontainer.Load(root(c), id)
	if err != nil {
		return err
	}
	defer ct.Close()
	return ct.Checkpoint(o)
}

// criuOptions reads the flags checkpoint and restore share.
func criuOptions(c *cli.Context) (*libcontainer.CriuOpts, error) {
	img := c.String("image-path")
	if img == "" {
		img = "checkpoint" // runc's default: ./checkpoint
	}
	img, err := filepath.Abs(img)
	if err != nil {
		return nil, err
	}
	work := c.String("work-path")
	if work != "" {
		if work, err = filepath.Abs(work); err != nil {
			return nil, err
		}
	}
	return &libcontainer.CriuOpts{
		CriuPath: c.String("criu"), ImagePath: img, WorkPath: work,
		TCP: c.Bool("tcp-established"), ExtUnixSk: c.Bool("ext-unix-sk"),
		ShellJob: c.Bool("shell-job"), FileLocks: c.Bool("file-locks"),
		AutoDedup: c.Bool("auto-dedup"), LazyPages: c.Bool("lazy-pages"),
		CgroupsMode: c.String("manage-cgroups-mode"), EmptyNs: c.StringSlice("empty-ns"),
		StatusFd: -1,
	}, nil
}

// criuStatus says whether checkpoint/restore works here (for features and --version): a criu
// found, recent enough, that passes its own check of this kernel.
func criuStatus(path string) (version string, err error) {
	return criu.Check(path)
}
