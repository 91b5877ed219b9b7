package main

import (
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
	"github.com/berth-project/berth/libcontainer/criu"
)

// criuFlags are the CRIU options checkpoint and restore share, with runc's names.
func criuFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image-path", Usage: "directory of criu's image files (default: ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for criu's work files and logs (default: the image directory)"},
		&cli.BoolFlag{Name: "tcp-established", Usage: "allow open tcp connections"},
		&cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"},
		&cli.BoolFlag{Name: "shell-job", Usage: "allow shell jobs"},
		&cli.BoolFlag{Name: "file-locks", Usage: "handle file locks, for safety"},
		&cli.StringFlag{Name: "manage-cgroups-mode", Usage: "cgroups mode: soft (default), full or strict"},
		&cli.StringSliceFlag{Name: "empty-ns", Usage: "create a namespace, but don't restore its properties (network only)"},
		&cli.BoolFlag{Name: "auto-dedup", Usage: "enable auto deduplication of memory images"},
		&cli.BoolFlag{Name: "lazy-pages", Usage: "use userfaultfd to lazily restore memory pages"},
	}
}

var checkpointCommand = &cli.Command{
	Name:      "checkpoint",
	Usage:     "checkpoint a running container",
	ArgsUsage: "<container-id>",
	Description: `The checkpoint command saves the state of the container's processes with CRIU
(criu 3.14 or newer, which must pass its own check of the kernel). Unless --leave-running
or --pre-dump is given, the container stops and is deleted once saved.`,
	Flags: append(criuFlags(),
		&cli.StringFlag{Name: "parent-path", Usage: "path of a previous pre-dump's images, relative to --image-path"},
		&cli.BoolFlag{Name: "leave-running", Usage: "leave the process running after checkpointing"},
		&cli.BoolFlag{Name: "pre-dump", Usage: "dump the container's memory only, and leave it running"},
		&cli.IntFlag{Name: "status-fd", Value: -1, Usage: "criu writes \\0 to this descriptor once lazy-pages is ready"},
		&cli.StringFlag{Name: "page-server", Usage: "ADDRESS:PORT of the page server"},
	),
	Action: func(c *cli.Context) error {
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
	},
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
