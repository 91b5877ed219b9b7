package image

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// errCrossLayerLink is a hard link to a file of a lower layer: applying layers each into its
// own directory cannot make it.
var errCrossLayerLink = errors.New("hard link to a file of a lower layer")

// appliedLayer is one layer applied on its own, overlayfs style, for mergeLayers.
type appliedLayer struct {
	dir       string
	implicit  map[string]bool // directories it has no entry for
	whiteouts []string        // the 0/0 devices it made
	opaques   []string        // the directories it marked opaque
}

// unpackParallel applies every layer into its own directory under tmp at once (as the store
// does), then merges them into rootfs in order by renaming: a subtree that only one layer has
// moves whole, and only directories several layers share are walked. What it makes is what
// applying the layers one after another makes (mergeMode), mtimes included.
func unpackParallel(im *Image, rootfs, tmp string, progress Progress) error {
	n := len(im.Layers)
	layers := make([]appliedLayer, n)
	errs := make([]error, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return im.Layers[order[a]].Size > im.Layers[order[b]].Size })
	workers := parallelWorkers()
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				layers[i], errs[i] = applyAlone(im, i, filepath.Join(tmp, fmt.Sprint(i)), progress)
			}
		}()
	}
	for _, i := range order {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range layers {
		if err := mergeLayer(rootfs, &layers[i]); err != nil {
			return fmt.Errorf("layer %s: merging: %w", im.Layers[i].Digest, err)
		}
	}
	return nil
}

func applyAlone(im *Image, i int, dir string, progress Progress) (appliedLayer, error) {
	l := appliedLayer{dir: dir}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return l, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return l, err
	}
	defer unix.Close(fd)
	blob, err := im.OpenLayer(i)
	if err != nil {
		return l, err
	}
	defer blob.Close()
	desc := im.Layers[i]
	r, stop := watch(blob, desc, progress)
	a := newApplier(fd, overlayMode)
	a.record = true
	defer a.close()
	err = applyLayer(r, desc.Digest.String(), im.DiffIDs[i], fd, overlayMode, a, len(im.Layers) == 1)
	stop()
	l.implicit, l.whiteouts, l.opaques = a.implicit, a.whiteouts, a.opaques
	return l, err
}

// mergeLayer moves layer l's tree over rootfs.
func mergeLayer(rootfs string, l *appliedLayer) error {
	if err := mergeDir(rootfs, l, ""); err != nil {
		return err
	}
	// Whiteouts and opaque marks moved with whole subtrees mean nothing below: drop them,
	// keeping their directories' times.
	for _, w := range l.whiteouts {
		p := filepath.Join(rootfs, w)
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && isWhiteout(p, &st) {
			if err := keepTimes(filepath.Dir(p), func() error { return unix.Unlink(p) }); err != nil {
				return err
			}
			if xattrValue(filepath.Dir(p), opaqueAttr()) == "x" { // marked as holding xattr whiteouts
				_ = unix.Lremovexattr(filepath.Dir(p), opaqueAttr())
			}
		}
	}
	for _, o := range l.opaques {
		if err := unix.Lremovexattr(filepath.Join(rootfs, o), opaqueAttr()); err != nil && err != unix.ENODATA && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

// keepTimes runs f, which changes directory dir, and puts dir's times back.
func keepTimes(dir string, f func() error) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dir, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// mergeDir merges directory rel of the layer into rootfs/rel, which exists as a directory.
func mergeDir(rootfs string, l *appliedLayer, rel string) error {
	src := filepath.Join(l.dir, rel)
	dst := filepath.Join(rootfs, rel)
	var dstSt, srcSt unix.Stat_t
	if err := unix.Lstat(dst, &dstSt); err != nil {
		return err
	}
	if err := unix.Lstat(src, &srcSt); err != nil {
		return err
	}
	opq := opaque(src)
	if opq {
		// What lower layers put here goes; what this layer has stays (it is all in src).
		f, err := os.Open(dst)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := os.RemoveAll(filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		s, d := filepath.Join(src, name), filepath.Join(dst, name)
		crel := path.Join(rel, name)
		var ss, ds unix.Stat_t
		if err := unix.Lstat(s, &ss); err != nil {
			return err
		}
		dErr := unix.Lstat(d, &ds)
		if isWhiteout(s, &ss) {
			// A whiteout: what lower layers have here goes.
			if dErr == nil {
				if err := os.RemoveAll(d); err != nil {
					return err
				}
			}
			continue
		}
		if ss.Mode&unix.S_IFMT == unix.S_IFDIR && dErr == nil && ds.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := mergeDir(rootfs, l, crel); err != nil {
				return err
			}
			continue
		}
		if dErr == nil && (ds.Mode&unix.S_IFMT == unix.S_IFDIR || ss.Mode&unix.S_IFMT == unix.S_IFDIR) {
			// rename replaces a non-directory with a non-directory only.
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		if err := unix.Rename(s, d); err != nil {
			return fmt.Errorf("moving %q into place: %w", crel, err)
		}
	}
	// The directory's attributes: this layer's if it has an entry for it, else what it had.
	if l.implicit[rel] {
		return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{dstSt.Atim, dstSt.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err := unix.Lchown(dst, int(srcSt.Uid), int(srcSt.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, srcSt.Mode&0o7777); err != nil {
		return err
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{srcSt.Atim, srcSt.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyXattrs sets dst's extended attributes to src's (overlayfs' own left out).
func copyXattrs(src, dst string) error {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(src, buf)
	if err != nil || n == 0 {
		return nil
	}
	val := make([]byte, 64<<10)
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		m, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:m], 0); err != nil {
			return fmt.Errorf("xattr %q: %w", name, err)
		}
	}
	return nil
}
