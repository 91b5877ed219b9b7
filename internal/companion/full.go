//go:build !lean

package companion

import (
	"errors"
	"os/exec"
)

var errFull = errors.New("companion: this berth is the full build; it runs everything itself")

// Lean says whether this is the lean build (which hands some commands to its companion).
const Lean = false

// Exec is for the lean build only.
func Exec(args []string) error { return errFull }

// Command is for the lean build only.
func Command(args ...string) (*exec.Cmd, error) { return nil, errFull }
