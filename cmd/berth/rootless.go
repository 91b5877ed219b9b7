package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/libcontainer"
	"github.com/berth-project/berth/namespaces"
)

// xdgRoot is $XDG_RUNTIME_DIR/berth when berth should keep its state there rather than in
// /run/berth (as runc chooses): an ordinary user, or root in a user namespace other than the
// initial one unless $USER says root. "" otherwise.
func xdgRoot() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return ""
	}
	if os.Geteuid() != 0 {
		return filepath.Join(dir, "berth")
	}
	if !namespaces.InUserNS() {
		return "" // the real root: /run/berth, whatever a login session set
	}
	if u, ok := os.LookupEnv("USER"); ok && u == "root" {
		return ""
	}
	return filepath.Join(dir, "berth")
}

// defaultRoot is --root's default: /run/berth, or xdgRoot.
func defaultRoot() string {
	if r := xdgRoot(); r != "" {
		return r
	}
	return libcontainer.DefaultRoot
}

// setupRootless reads --rootless (true, false, or auto: euid not 0, or root in a user
// namespace that is not the initial one, as runc decides) and, when the state root is the
// XDG default, makes it (0700 and sticky, so that the session's cleaner leaves it alone).
func setupRootless(c *cli.Context) error {
	rootless := os.Geteuid() != 0 || namespaces.InUserNS()
	if v := c.String("rootless"); v != "" && !strings.EqualFold(v, "auto") {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("--rootless: %q must be true, false or auto", v)
		}
		rootless = b
	}
	cgroups.Rootless = rootless
	if err := checkRootOwner(c.String("root")); err != nil {
		return err
	}
	if !c.IsSet("root") {
		if r := xdgRoot(); r != "" {
			if err := os.MkdirAll(r, 0o700); err != nil {
				return fmt.Errorf("$XDG_RUNTIME_DIR must be a directory you can write: %w", err)
			}
			if err := os.Chmod(r, 0o700|os.ModeSticky); err != nil {
				return fmt.Errorf("$XDG_RUNTIME_DIR/berth: %w", err)
			}
		}
	}
	return nil
}

// checkRootOwner refuses, for root of the host, a state root that another user owns or may
// change (writable by others, not sticky): its containers' records say which processes root
// signals, which cgroups and mounts it removes and which poststop hooks it runs, and its
// owner can swap a directory root is writing into for a symlink. `berth --root
// /run/user/1000/berth delete ID` as root would run that user's hooks as root. The user runs
// berth on their own containers.
func checkRootOwner(root string) error {
	if os.Geteuid() != 0 || namespaces.InUserNS() {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil // made by root, later
	}
	if st.Uid != 0 || (st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0) {
		return fmt.Errorf("--root %s: owned by uid %d, mode %04o: root does not act on state another user can change (run berth as that user)", root, st.Uid, st.Mode&0o7777)
	}
	return nil
}
