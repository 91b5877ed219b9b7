package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// keepArgOrder are the commands whose arguments after the container id are a command line of
// their own (exec's program, ps's options for ps(1)): there a flag after the id is not ours.
var keepArgOrder = map[string]bool{"exec": true, "ps": true}

// reorderArgs lets a command's flags come after its arguments, as runc's CLI (urfave/cli v1)
// does: `berth update ID --pids-limit 10` is `berth update --pids-limit 10 ID`. urfave/cli v2
// stops reading flags at the first argument, so the command line is rearranged before it
// parses it: every argument of the command that starts with "-" moves in front of the
// others, with its value when it is a flag that takes one and the value is not joined by
// "=". Nothing after "--" moves. exec and ps keep their order, and so do create and run with
// --image, whose arguments after the id are the image's command.
func reorderArgs(app *cli.App, args []string) []string {
	i, cmd := findCommand(app, args)
	if cmd == nil || keepArgOrder[cmd.Name] || len(cmd.Subcommands) > 0 {
		return args
	}
	rest := args[i+1:]
	var flags, operands []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			operands = append(operands, rest[j:]...)
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			operands = append(operands, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "image" || strings.HasPrefix(name, "image=") {
			return args // run/create --image: the rest may be the image's command line
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && takesValue(cmd.Flags, name) && j+1 < len(rest) {
			j++
			flags = append(flags, rest[j])
		}
	}
	out := append(append([]string(nil), args[:i+1]...), flags...)
	return append(out, operands...)
}

// findCommand skips the global flags (and their values) and returns the index and the
// command named next, or nil if there is none.
func findCommand(app *cli.App, args []string) (int, *cli.Command) {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return 0, nil
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if !strings.Contains(a, "=") && takesValue(app.Flags, strings.TrimLeft(a, "-")) {
				i++
			}
			continue
		}
		for _, c := range app.Commands {
			if c.HasName(a) {
				return i, c
			}
		}
		return 0, nil
	}
	return 0, nil
}

// takesValue says whether name is one of flags and reads a value (not a boolean).
func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if v, ok := f.(cli.DocGenerationFlag); ok {
				return v.TakesValue()
			}
			return false
		}
	}
	return false
}
