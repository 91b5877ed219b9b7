package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// runcCommands are the commands berth shares with runc. Their help names the runc command
// too: runc's own suite (help.bats) checks the second line of `-h` for "runc <command>".
var runcCommands = map[string]bool{
	"checkpoint": true, "create": true, "delete": true, "events": true, "exec": true,
	"features": true, "kill": true, "list": true, "pause": true, "ps": true, "restore": true,
	"resume": true, "run": true, "spec": true, "start": true, "state": true, "update": true,
}

const nameLine = `{{template "helpNameTemplate" .}}`

// appDescription follows the NAME line of `berth --help`.
const appDescription = `berth runs containers from OCI bundles (a config.json and a root filesystem) with
runc's command line, flags, state and exit statuses, so that containerd, podman and
Kubernetes can call it where they call runc. It also runs OCI images directly:

    # berth run --image LAYOUT[:TAG] <container-id> [command...]

To run a bundle in the current directory (or the one -b names):

    # berth run [ -b bundle ] <container-id>

The container id is yours to choose and must be unique under --root.`

// setupHelp gives the app and runc's commands a NAME line that says which runc command
// berth stands in for ("berth delete, as runc delete - ...").
func setupHelp(app *cli.App) {
	app.CustomAppHelpTemplate = strings.Replace(cli.AppHelpTemplate, nameLine,
		`{{.HelpName}}, as runc - {{.Usage}}`, 1)
	cmdTemplate := strings.Replace(cli.CommandHelpTemplate, nameLine,
		`{{.HelpName}}, as runc {{.Name}} - {{.Usage}}`, 1)
	for _, c := range app.Commands {
		if runcCommands[c.Name] && len(c.Subcommands) == 0 {
			c.CustomHelpTemplate = cmdTemplate
		}
	}
}
