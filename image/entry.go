package image

import (
	"archive/tar"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
)

func (a *applier) entry(tr *tar.Reader, h *tar.Header) error {
	rel, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(rel)
	if strings.HasPrefix(base, whPrefix) {
		return a.whiteout(dir, base)
	}
	if rel == "" {
		// The layer's root directory itself.
		if h.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root of the layer must be a directory")
		}
		delete(a.implicit, "")
		if err := a.rootAttrs(h); err != nil {
			return err
		}
		a.times = append(a.times, dirTime{"", unix.NsecToTimespec(h.ModTime.UnixNano()), atime(h)})
		return nil
	}
	p, err := a.parent(dir)
	if err != nil {
		return err
	}
	a.markSeen(rel)
	perm := uint32(h.Mode) & 0o7777
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		return a.file(tr, h, p, base, rel, perm)
	case tar.TypeDir:
		existed := false
		err := unix.Mkdirat(p.fd, base, perm)
		if err == unix.EEXIST {
			var st unix.Stat_t
			if err = unix.Fstatat(p.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err = a.remove(p.fd, base, rel); err == nil {
					err = unix.Mkdirat(p.fd, base, perm)
				}
			} else {
				existed = true // made as a parent, or by a lower layer: set everything
				delete(a.implicit, rel)
			}
		}
		if err != nil {
			return err
		}
		if p, err = a.parent(dir); err != nil {
			return err
		}
		if err := a.attrsAt(p, base, h, true, existed); err != nil {
			return err
		}
		a.times = append(a.times, dirTime{rel, unix.NsecToTimespec(h.ModTime.UnixNano()), atime(h)})
		return nil
	case tar.TypeSymlink:
		if err := a.create(p.fd, base, rel, func() error { return unix.Symlinkat(h.Linkname, p.fd, base) }); err != nil {
			return err
		}
		return a.attrsAt(p, base, h, false, false)
	case tar.TypeLink:
		return a.hardlink(h, p, base, rel)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		dev := int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))
		if err := a.create(p.fd, base, rel, func() error { return unix.Mknodat(p.fd, base, typ|perm, dev) }); err != nil {
			if err == unix.EPERM && userXattrs() && h.Typeflag != tar.TypeFifo {
				// A user namespace may not make devices: left out, as rootless podman
				// and docker do (a container's /dev is made apart from its image).
				explain.Stepf("image.applyLayer", "layer %s: device %s left out (no devices in a user namespace)", a.layer, rel)
				return nil
			}
			return err
		}
		return a.attrsAt(p, base, h, false, false)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
}

func atime(h *tar.Header) unix.Timespec {
	if !h.AccessTime.IsZero() {
		return unix.NsecToTimespec(h.AccessTime.UnixNano())
	}
	return unix.NsecToTimespec(h.ModTime.UnixNano())
}

// create runs mk, and if the name is taken, removes what is there (a directory with all it
// holds, as tar does) and runs it again.
func (a *applier) create(dirfd int, base, rel string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err = a.remove(dirfd, base, rel); err == nil {
			err = mk()
		}
	}
	return err
}

// remove deletes name below dirfd, a directory recursively.
func (a *applier) remove(dirfd int, name, rel string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == unix.EISDIR || err == unix.EPERM {
		err = removeAllAt(dirfd, name)
		// Open directory fds below it went stale: forget them.
		for k, d := range a.dirs {
			if k == rel || strings.HasPrefix(k, rel+"/") {
				unix.Close(d.fd)
				delete(a.dirs, k)
			}
		}
	}
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// removeAllAt deletes a directory tree without following any symlink in it.
func removeAllAt(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOTDIR || err == unix.ELOOP {
			return unix.Unlinkat(dirfd, name, 0)
		}
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	for {
		names, err := f.Readdirnames(512)
		for _, n := range names {
			if err := unix.Unlinkat(fd, n, 0); err == unix.EISDIR || err == unix.EPERM {
				if err := removeAllAt(fd, n); err != nil {
					f.Close()
					return err
				}
			} else if err != nil && err != unix.ENOENT {
				f.Close()
				return err
			}
		}
		if err != nil || len(names) == 0 {
			break
		}
	}
	f.Close()
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

func (a *applier) hardlink(h *tar.Header, p *dirFd, base, rel string) error {
	target, err := cleanName(h.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("hard link to the layer root")
	}
	tdir, tbase := path.Split(target)
	dir := strings.TrimSuffix(rel[:len(rel)-len(base)], "/")
	var tp *dirFd
	for i := 0; ; i++ {
		if tp, err = a.parent(tdir); err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if p, err = a.parent(dir); err != nil {
			return err
		}
		// Both must still be open: looking one up may have emptied the cache.
		if a.dirs[strings.TrimSuffix(tdir, "/")] == tp || i > 0 {
			break
		}
	}
	if target == rel {
		return nil
	}
	err = a.create(p.fd, base, rel, func() error { return unix.Linkat(tp.fd, tbase, p.fd, base, 0) })
	if err == unix.ENOENT {
		if a.mode == overlayMode {
			return fmt.Errorf("hard link to %q, which is not in this layer: %w (not supported in the layer store)", h.Linkname, errCrossLayerLink)
		}
		return fmt.Errorf("hard link to %q, which does not exist", h.Linkname)
	}
	return err
}
