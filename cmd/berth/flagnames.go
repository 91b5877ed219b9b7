package main

import "github.com/urfave/cli/v2"

// urfave/cli's flags work out their names (FlagNames: a regexp replace on the name and each
// alias) on every Names call, and a command calls it for every pair of its flags: it asks
// IsSet of each flag (runFlagActions), and IsSet looks the flag up by scanning the flags'
// names. That was about 0.1 ms of every berth process's CPU, so each flag is wrapped in a
// type that works its names out once. The wrappers embed the flag, so every other method
// and interface (help text, categories, required, actions) is the flag's own.

type boolFlag struct {
	*cli.BoolFlag
	names []string
}

func (f *boolFlag) Names() []string { return once(&f.names, f.BoolFlag.Names) }

type stringFlag struct {
	*cli.StringFlag
	names []string
}

func (f *stringFlag) Names() []string { return once(&f.names, f.StringFlag.Names) }

type intFlag struct {
	*cli.IntFlag
	names []string
}

func (f *intFlag) Names() []string { return once(&f.names, f.IntFlag.Names) }

type stringSliceFlag struct {
	*cli.StringSliceFlag
	names []string
}

func (f *stringSliceFlag) Names() []string { return once(&f.names, f.StringSliceFlag.Names) }

type durationFlag struct {
	*cli.DurationFlag
	names []string
}

func (f *durationFlag) Names() []string { return once(&f.names, f.DurationFlag.Names) }

type genericFlag struct {
	*cli.GenericFlag
	names []string
}

func (f *genericFlag) Names() []string { return once(&f.names, f.GenericFlag.Names) }

type int64SliceFlag struct {
	*cli.Int64SliceFlag
	names []string
}

func (f *int64SliceFlag) Names() []string { return once(&f.names, f.Int64SliceFlag.Names) }

func once(names *[]string, compute func() []string) []string {
	if *names == nil {
		*names = compute()
	}
	return *names
}

// cacheFlagNames wraps the flags of app and of every command in it.
func cacheFlagNames(app *cli.App) {
	wrapFlags(app.Flags)
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			wrapFlags(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
}

func wrapFlags(flags []cli.Flag) {
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.BoolFlag:
			flags[i] = &boolFlag{BoolFlag: f}
		case *cli.StringFlag:
			flags[i] = &stringFlag{StringFlag: f}
		case *cli.IntFlag:
			flags[i] = &intFlag{IntFlag: f}
		case *cli.StringSliceFlag:
			flags[i] = &stringSliceFlag{StringSliceFlag: f}
		case *cli.DurationFlag:
			flags[i] = &durationFlag{DurationFlag: f}
		case *cli.GenericFlag:
			flags[i] = &genericFlag{GenericFlag: f}
		case *cli.Int64SliceFlag:
			flags[i] = &int64SliceFlag{Int64SliceFlag: f}
		}
	}
}
