package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/image"
)

// storeDir is the layer store's directory: <root>/.images for root, and for anyone who gives
// --root; an ordinary user's is $XDG_DATA_HOME/berth/images otherwise (~/.local/share), kept
// across reboots, unlike the state under $XDG_RUNTIME_DIR.
func storeDir(c *cli.Context) string {
	if c.IsSet("root") || os.Geteuid() == 0 && image.InitialUserNS() {
		return image.StoreDir(root(c))
	}
	return filepath.Join(dataHome(), "berth", "images")
}

// dataHome is $XDG_DATA_HOME if it is an absolute path (the XDG rule), else ~/.local/share.
func dataHome() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		home = "/nonexistent" // the error then names the path
	}
	return filepath.Join(home, ".local", "share")
}

// releaseImage is libcontainer.ReleaseImage: it releases what run --image made for a container
// being deleted (its overlay and upper directory); for an ordinary user, in a user namespace
// mapped as the one that made it (the files of its upper directory are the user's other ids).
func releaseImage(root, id, bundle string) error {
	if os.Geteuid() == 0 {
		return releaseBundle(bundle)
	}
	uids, gids, err := subIDMappings()
	if err != nil {
		return err
	}
	code, err := rerunInUserNS([]string{"berth", "image", "release", bundle}, uids, gids, 0)
	if err == nil && code != 0 {
		err = fmt.Errorf("releasing %s in the user namespace: exit status %d", bundle, code)
	}
	return err
}

// releaseBundle releases a container directory of a store (<store>/containers/<id>), and
// refuses any other path: what it removes is read from the container's state.
func releaseBundle(dir string) error {
	if !filepath.IsAbs(dir) || filepath.Base(filepath.Dir(filepath.Clean(dir))) != "containers" {
		return fmt.Errorf("%s is not a container directory of an image store (<store>/containers/<id>)", dir)
	}
	return image.ReleaseBundle(dir)
}
