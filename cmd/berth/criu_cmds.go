package main

import "github.com/urfave/cli/v2"

// checkpoint and restore, as every berth shows them. What they do is in checkpoint.go and
// restore.go in the full build; the lean build hands them to its companion
// (companion_lean.go), since they need go-criu.

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
	Action: checkpointAction,
}

var restoreCommand = &cli.Command{
	Name:      "restore",
	Usage:     "restore a container from a previous checkpoint",
	ArgsUsage: "<container-id>",
	Description: `Restores, as a new container <container-id>, the processes saved by berth (or runc)
checkpoint. The bundle gives the config: cgroup and limits, hooks, terminal. With --detach it
returns once the container runs; without, it waits for it and exits with its status.`,
	Flags: append(criuFlags(),
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the bundle (default: current directory)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the container runs"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the restored init's pid to this file"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "do not become a subreaper"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "accepted for runc's callers; criu restores the mounts itself"},
		&cli.StringFlag{Name: "lsm-profile", Usage: "LSM profile for the restored processes, TYPE:NAME"},
		&cli.StringFlag{Name: "lsm-mount-context", Usage: "LSM mount context for the restored mounts"},
	),
	Action: restoreAction,
}
