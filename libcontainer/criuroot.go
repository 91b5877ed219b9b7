package libcontainer

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

// criuRootName is the mount point, in the state directory, where restore binds the rootfs
// for criu.
const criuRootName = "criu-root"

// releaseCriuRoot unmounts what a restore killed half-way left bound at criu-root in the state
// directory dir (the rootfs, recursively): removing the directory through it would delete the
// rootfs's files. An error means it is still mounted, and dir must not be removed.
func releaseCriuRoot(dir string) error {
	if dir == "" {
		return nil
	}
	p := filepath.Join(dir, criuRootName)
	for {
		err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not (or no longer) a mount point; no such directory
		case err != nil:
			return fmt.Errorf("unmounting %s, left by a restore: %w", p, err)
		}
		explain.Stepf("libcontainer.releaseCriuRoot", "umount -l %s (left by a killed restore)", p)
	}
}
