package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/internal/specjson"
	"github.com/berth-project/berth/libcontainer"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run another process in a created or running container",
	ArgsUsage: "<container-id> <command> [args...]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "JSON file with the process (runtime-spec process object); other flags are then ignored"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.StringFlag{Name: "cwd", Usage: "current working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "add or override an environment variable (NAME=VALUE)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional group ids"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs on the process"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process runs"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid to this file"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many descriptors (from fd 3) to the process"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label of the process"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile of the process"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "exec in a paused container too: the process starts once it is resumed"},
		&cli.GenericFlag{Name: "cgroup", Value: &rawList{}, Usage: "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 {
			return fmt.Errorf("exec: needs a container id")
		}
		pidFile := c.String("pid-file")
		if pidFile != "" {
			var err error
			if pidFile, err = filepath.Abs(pidFile); err != nil {
				return err
			}
		}
		// From here on a failure is exec's own, not the process's: runc exits 255 then,
		// which callers tell apart from the exit status of the program they ran.
		err := execInContainer(c, pidFile)
		var ex exitError
		if err == nil || errors.As(err, &ex) {
			return err
		}
		return codedError{255, fmt.Errorf("exec failed: %w", err)}
	},
}

func execInContainer(c *cli.Context, pidFile string) error {
	if n := c.Int("preserve-fds"); n < 0 {
		return fmt.Errorf("--preserve-fds: %d must not be negative", n)
	}
	detach := c.Bool("detach")
	var sigs *libcontainer.Signals
	if !detach {
		var err error
		if sigs, err = libcontainer.CatchSignals(); err != nil {
			return err
		}
	}
	subCgroups, err := cgroups.ParseSubPaths(*c.Generic("cgroup").(*rawList))
	if err != nil {
		return err
	}
	ct, err := libcontainer.Load(root(c), c.Args().First())
	if err != nil {
		return err
	}
	// Unlocked once the process runs: kill, state and delete must work on it meanwhile.
	defer ct.Close()
	if err := ct.CanExec(c.Bool("ignore-paused")); err != nil {
		return err
	}
	if ct.Status() == libcontainer.Paused {
		// --ignore-paused: the process stays frozen until `resume`, which needs the lock.
		ct.Close()
	}
	if c.String("process") == "" && c.NArg() < 2 {
		return errors.New("process args cannot be empty")
	}
	spec, err := ct.State.Spec()
	if err != nil {
		return err
	}
	proc, err := execProcess(c, spec)
	if err != nil {
		return err
	}
	l, err := ct.Exec(libcontainer.ExecOpts{
		Process: proc, Detach: detach, PidFile: pidFile, IgnorePaused: c.Bool("ignore-paused"),
		ConsoleSocket: c.String("console-socket"), PreserveFds: c.Int("preserve-fds"),
		SubCgroups: subCgroups,
	})
	ct.Close()
	if err != nil || detach {
		return err
	}
	if code := l.Wait(sigs); code != 0 {
		return exitError{code}
	}
	return nil
}

// execProcess builds the process as runc does: --process replaces everything; otherwise the
// container's own process with the command line and the flags applied.
func execProcess(c *cli.Context, cfg *specs.Spec) (*specs.Process, error) {
	if f := c.String("process"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--process: %w", err)
		}
		// The generated decoder first (no reflection in this fresh process); encoding/json,
		// whose results and errors are the contract, for anything it gives up on.
		if p, ok := specjson.UnmarshalProcess(data); ok {
			return p, nil
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", f, err)
		}
		return &p, nil
	}
	if cfg == nil || cfg.Process == nil {
		return nil, fmt.Errorf("exec: the container's config has no process to start from")
	}
	p := *cfg.Process
	if p.Capabilities != nil {
		caps := *p.Capabilities
		p.Capabilities = &caps
	}
	p.Args = c.Args().Slice()[1:]
	p.Terminal = c.Bool("tty")
	p.Env = append(append([]string(nil), p.Env...), c.StringSlice("env")...)
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if u := c.String("user"); u != "" {
		uid, gid, hasGid := strings.Cut(u, ":")
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user: %q: the uid must be a number", u)
		}
		p.User.UID = uint32(n)
		if hasGid {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user: %q: the gid must be a number", u)
			}
			p.User.GID = uint32(g)
		}
	}
	for _, g := range c.Int64Slice("additional-gids") {
		if g < 0 || g > 1<<32-1 {
			return nil, fmt.Errorf("--additional-gids: %d is not a gid", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if caps := c.StringSlice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		// As runc: names as given (an unknown one is left out with a warning by
		// libcontainer), into the bounding, effective, permitted and ambient sets.
		for _, cp := range caps {
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, cp)
			p.Capabilities.Effective = append(p.Capabilities.Effective, cp)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, cp)
			p.Capabilities.Ambient = append(p.Capabilities.Ambient, cp)
		}
	}
	if c.Bool("no-new-privs") {
		p.NoNewPrivileges = true
	}
	if l := c.String("apparmor"); l != "" {
		p.ApparmorProfile = l
	}
	if l := c.String("process-label"); l != "" {
		p.SelinuxLabel = l
	}
	return &p, nil
}

// rawList collects every value of a repeated flag as given: urfave's StringSlice would cut
// "cpu,cpuacct:sub" at the comma.
type rawList []string

func (l *rawList) Set(v string) error { *l = append(*l, v); return nil }
func (l *rawList) String() string     { return strings.Join(*l, " ") }
