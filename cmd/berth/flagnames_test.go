package main

import (
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagNamesCached: every flag of every command is wrapped (a flag type without a wrapper
// would bring the per-call regexp back), and a wrapper's names are the flag's own.
func TestFlagNamesCached(t *testing.T) {
	app := newApp()
	check := func(where string, flags []cli.Flag) {
		for _, f := range flags {
			var own []string
			switch w := f.(type) {
			case *boolFlag:
				own = w.BoolFlag.Names()
			case *stringFlag:
				own = w.StringFlag.Names()
			case *intFlag:
				own = w.IntFlag.Names()
			case *stringSliceFlag:
				own = w.StringSliceFlag.Names()
			case *durationFlag:
				own = w.DurationFlag.Names()
			case *genericFlag:
				own = w.GenericFlag.Names()
			case *int64SliceFlag:
				own = w.Int64SliceFlag.Names()
			default:
				t.Errorf("%s: flag %v (%T) is not wrapped", where, f.Names(), f)
				continue
			}
			if got := f.Names(); !reflect.DeepEqual(got, own) {
				t.Errorf("%s: names %v, the flag's own %v", where, got, own)
			}
		}
	}
	check("berth", app.Flags)
	var walk func(string, []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			check(prefix+c.Name, c.Flags)
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("berth ", app.Commands)
}
