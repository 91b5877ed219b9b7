package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/explain"
	"github.com/berth-project/berth/internal/rawfile"
	"github.com/berth-project/berth/internal/specjson"
)

// ContainerDir is where container id's image bundle lives in the store in dir.
func ContainerDir(store, id string) string {
	return filepath.Join(store, "containers", id)
}

// PrepareOpts are the inputs of Prepare.
type PrepareOpts struct {
	Root     string // berth's root (container state)
	Store    string // the store's directory
	ID       string
	Image    *Image
	Args     []string // replace the image's Cmd when set (Entrypoint is kept, as docker run does)
	Progress Progress
	// Applied receives how many layers had to be applied (0: all were in the store).
	Applied *int
	// Spec, when set, receives the config written to config.json, so that the caller need
	// not read it back (decoding a spec in a fresh process costs ~0.7 ms).
	Spec **specs.Spec
	// Later, when set, receives the writes that starting the container does not wait for
	// (the container's image.json, the store's record of the image, config.json), for the
	// caller to run while the init builds the container (libcontainer's WhileInitBuilds).
	// The store stays locked shared until it has run, so that prune and rm never see the
	// container without its image.json. Unset, Prepare writes them itself.
	Later *func() error
}

// Prepare makes container id's bundle from an image: the layers in the store (applied if
// missing), an overlay of them with the container's own upper and work directories as
// rootfs, and config.json converted from the image config (with PrepareOpts.Later, once the
// caller runs it). It returns the bundle directory. On failure nothing is left; on success
// ReleaseBundle undoes it.
func Prepare(o PrepareOpts) (bundle string, err error) {
	s, err := OpenStore(o.Store)
	if err != nil {
		return "", err
	}
	if err := s.lockShared(); err != nil {
		s.Close()
		return "", err
	}
	handedOn := false // the store's lock goes with Later
	defer func() {
		if !handedOn {
			s.unlock()
			s.Close()
		}
	}()
	dir := ContainerDir(o.Store, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, os.ErrExist) || !abandoned(o.Root, dir, o.ID) {
			return "", fmt.Errorf("container %q: its image rootfs exists already (%s)", o.ID, dir)
		}
		if err := ReleaseBundle(dir); err != nil {
			return "", err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", err
		}
	}
	defer func() {
		if err != nil {
			_ = ReleaseBundle(dir)
		}
	}()
	// Held by this berth until it exits: a dir whose lock is free and that has no container
	// state was left by a create that died.
	lf, err := rawfile.Open(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return "", err
	}
	keepLocked = append(keepLocked, lf)
	explain.Stepf("image.Prepare", "mkdir %s, flock its lock (held until berth exits); store %s locked shared", dir, s.Dir)
	im := o.Image
	n, err := s.AddLayers(im, o.Progress)
	if o.Applied != nil {
		*o.Applied = n
	}
	if err != nil {
		return "", err
	}
	explain.Stepf("image.Prepare", "%d of %d layers applied into %s, the rest were stored", n, len(im.DiffIDs), filepath.Join(s.Dir, "layers"))
	rootfs := filepath.Join(dir, "rootfs")
	upper := filepath.Join(dir, "upper")
	work := filepath.Join(dir, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := fixImplicit(s, im, upper); err != nil {
		return "", err
	}
	var lowers []string
	for i := len(im.DiffIDs) - 1; i >= 0; i-- { // overlay's first lowerdir is the top
		lowers = append(lowers, s.LayerDir(im.DiffIDs[i]))
	}
	if len(lowers) == 0 {
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			return "", err
		}
		lowers = []string{empty}
	}
	if err := mountOverlay(rootfs, lowers, upper, work); err != nil {
		return "", err
	}
	spec, err := RuntimeSpec(im, rootfs, o.Args)
	if err != nil {
		return "", err
	}
	// A WorkingDir the image lacks is made (in the upper), as docker does.
	if err := makeCwd(rootfs, spec.Process.Cwd); err != nil {
		return "", fmt.Errorf("image config WorkingDir %s: %w", spec.Process.Cwd, err)
	}
	finish := func() error {
		defer func() {
			s.unlock()
			s.Close()
		}()
		// Written in place, not renamed over: the directory is new, and the store is locked
		// shared until this returns, so prune (exclusive) never reads it half-written. One
		// that a killed create left half-written is in an abandoned directory, released as
		// such.
		use, err := marshalIndented(&containerUse{Ref: im.Ref, Manifest: im.Manifest.Digest, DiffIDs: im.DiffIDs})
		if err != nil {
			return err
		}
		if err := rawfile.WriteFile(filepath.Join(dir, "image.json"), use, 0o600); err != nil {
			return err
		}
		if err := s.writeRecord(im); err != nil {
			return err
		}
		explain.Stepf("image.Prepare", "write %s/config.json from the image config: args %q, cwd %s, uid %d gid %d, %d env vars",
			dir, spec.Process.Args, spec.Process.Cwd, spec.Process.User.UID, spec.Process.User.GID, len(spec.Process.Env))
		data, err := specjson.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		return rawfile.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
	}
	if o.Later != nil {
		handedOn = true
		done := false
		*o.Later = func() error {
			if done {
				return nil
			}
			done = true
			return finish()
		}
	} else {
		handedOn = true // finish unlocks
		if err := finish(); err != nil {
			return "", err
		}
	}
	if o.Spec != nil {
		*o.Spec = spec
	}
	return dir, nil
}

// keepLocked holds the container directories' locks until this berth exits.
var keepLocked []*os.File

// ReleaseBundle undoes Prepare for the container whose bundle is dir: it unmounts the overlay
// and removes the upper and work directories. The layer store is untouched. Releasing twice
// is harmless.
func ReleaseBundle(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	rootfs := filepath.Join(dir, "rootfs")
	for {
		err := unix.Unmount(rootfs, unix.UMOUNT_NOFOLLOW)
		if err == unix.EINVAL || err == unix.ENOENT {
			break // not (or no longer) a mount point
		}
		if err == unix.EBUSY {
			explain.Stepf("image.ReleaseBundle", "umount -l %s (busy)", rootfs)
			err = unix.Unmount(rootfs, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("unmounting %s: %w", rootfs, err)
		}
		explain.Stepf("image.ReleaseBundle", "umount %s", rootfs)
	}
	explain.Stepf("image.ReleaseBundle", "rm -r %s (upper and work)", dir)
	return removeContainerDir(dir)
}

// removeContainerDir removes a released container directory: what Prepare made there, by
// name, and what overlayfs leaves in a volatile mount's work directory; whatever else is
// there (what the container wrote in upper) goes through os.RemoveAll, as does the whole
// directory when anything is not as expected. os.RemoveAll alone tries an unlink of each
// directory before its rmdir, and opens and lists each: twice the system calls, at every
// delete of a run --image container.
func removeContainerDir(dir string) error {
	at := func(p string) string { return filepath.Join(dir, p) }
	for _, f := range []string{"config.json", "image.json", "lock", "work/work/incompat/volatile/dirty"} {
		_ = unix.Unlink(at(f))
	}
	for _, d := range []string{"work/work/incompat/volatile", "work/work/incompat", "work/work", "work", "rootfs", "upper", "empty"} {
		if err := unix.Rmdir(at(d)); err != nil && err != unix.ENOENT {
			break // not empty, or not a directory: RemoveAll below
		}
	}
	if err := unix.Rmdir(dir); err == nil || err == unix.ENOENT {
		return nil
	}
	return os.RemoveAll(dir)
}

// mountOverlay mounts lowers (top first) with upper and work on target. mount(2) takes its
// options in one page, which ~40 layers with long paths overflow: then the layers are added
// one by one through the new mount API (fsconfig lowerdir+).
func mountOverlay(target string, lowers []string, upper, work string) error {
	special := func(p string) bool { return strings.ContainsAny(p, ":,") }
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if userXattrs() {
		data += ",userxattr" // in a user namespace: marks in user.overlay.* (userxattr.go)
	}
	fits := len(data) < os.Getpagesize()-1 && !special(upper) && !special(work)
	for _, l := range lowers {
		fits = fits && !special(l)
	}
	if fits && os.Getenv("BERTH_OVERLAY_FSCONFIG") == "" {
		explain.Stepf("image.mountOverlay", "mount -t overlay overlay -o %s,volatile %s", data, target)
		err := unix.Mount("overlay", target, "overlay", 0, data+",volatile")
		if err == unix.EINVAL {
			err = unix.Mount("overlay", target, "overlay", 0, data) // before Linux 5.10
		}
		if err != nil {
			return overlayError(err)
		}
		return nil
	}
	explain.Stepf("image.mountOverlay", "fsopen overlay, lowerdir+ x%d, upperdir=%s, workdir=%s; move_mount to %s", len(lowers), upper, work, target)
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return overlayError(err)
	}
	defer unix.Close(fs)
	set := func(key, val string) error {
		if err := unix.FsconfigSetString(fs, key, val); err != nil {
			if len(val) >= 256 {
				// fsconfig strings stop at 256 bytes: pass the directory itself.
				fd, oerr := unix.Open(val, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if oerr == nil {
					defer unix.Close(fd)
					if err = unix.FsconfigSetFd(fs, key, fd); err == nil {
						return nil
					}
				}
			}
			return fmt.Errorf("overlay %s=%s: %w%s", key, val, err, fsLog(fs))
		}
		return nil
	}
	if err := set("source", "overlay"); err != nil {
		return err
	}
	for _, l := range lowers {
		if err := set("lowerdir+", l); err != nil {
			return err
		}
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	if userXattrs() {
		if err := unix.FsconfigSetFlag(fs, "userxattr"); err != nil {
			return overlayError(fmt.Errorf("overlay userxattr: %w%s", err, fsLog(fs)))
		}
	}
	_ = unix.FsconfigSetFlag(fs, "volatile") // refused before Linux 5.10: then a synced upper
	if err := unix.FsconfigCreate(fs); err != nil {
		return overlayError(fmt.Errorf("%w%s", err, fsLog(fs)))
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return overlayError(err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return overlayError(err)
	}
	return nil
}

// fsLog reads the messages the kernel left on an fs context.
func fsLog(fd int) string {
	var out []string
	buf := make([]byte, 1024)
	for i := 0; i < 16; i++ {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		out = append(out, string(buf[:n]))
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, "; ") + ")"
}

func overlayError(err error) error {
	return fmt.Errorf("mounting the overlay rootfs: %w (berth run --image needs overlayfs, with the store under --root on a filesystem it accepts as upper: ext4, xfs, tmpfs...; or make a plain bundle with `berth image unpack`)", err)
}

// fixImplicit gives the container's upper directory the directories whose merged attributes
// overlayfs would otherwise take from a layer that only made them as parents of its entries
// (0755, root, the time it was applied): they get the attributes of the nearest lower layer
// that has an entry for them, which is what applying the layers in order gives (and what
// `umoci unpack` shows). The root is always set so.
func fixImplicit(s *Store, im *Image, upper string) error {
	n := len(im.DiffIDs)
	if n == 0 {
		return nil
	}
	dirs := make([]string, n)
	implicit := make([]map[string]bool, n)
	paths := map[string]bool{"": true}
	for i, d := range im.DiffIDs {
		dirs[i] = s.LayerDir(d)
		implicit[i] = map[string]bool{}
		for _, p := range s.layerMeta(d).Implicit {
			implicit[i][p] = true
			paths[p] = true
		}
	}
	// visible lists, top first, the layers where p is a directory the merged view sees.
	visible := func(p string) []int {
		var out []int
		for i := n - 1; i >= 0; i-- {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dirs[i], p), &st); err == nil {
				if st.Mode&unix.S_IFMT != unix.S_IFDIR {
					break // a whiteout or a file: nothing below shows
				}
				out = append(out, i)
				if opaque(filepath.Join(dirs[i], p)) {
					break
				}
			}
			if hidesBelow(dirs[i], p) {
				break
			}
		}
		return out
	}
	type fix struct {
		path string
		st   unix.Stat_t
	}
	var fixes []fix
	need := map[string]bool{}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		vis := visible(p)
		if len(vis) == 0 || !implicit[vis[0]][p] {
			if p != "" || len(vis) == 0 {
				continue
			}
		}
		src := vis[0]
		for _, i := range vis {
			if !implicit[i][p] {
				src = i
				break
			}
		}
		if src == vis[0] && p != "" {
			continue // no layer has an entry for it: a made-up parent is all there is
		}
		need[p] = true
	}
	// Parents of what is fixed are made in upper too, with the attributes the merged view
	// already shows for them.
	for p := range need {
		for q := filepath.Dir(p); q != "." && q != "/" && q != ""; q = filepath.Dir(q) {
			need[q] = true
		}
	}
	order := make([]string, 0, len(need)+1)
	for p := range need {
		order = append(order, p)
	}
	sort.Strings(order)
	for _, p := range order {
		vis := visible(p)
		if len(vis) == 0 {
			continue
		}
		src := vis[0]
		for _, i := range vis {
			if !implicit[i][p] {
				src = i
				break
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dirs[src], p), &st); err != nil {
			return err
		}
		fixes = append(fixes, fix{p, st})
	}
	for _, f := range fixes {
		dst := filepath.Join(upper, f.path)
		if f.path != "" {
			if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		}
		if err := unix.Lchown(dst, int(f.st.Uid), int(f.st.Gid)); err != nil {
			return err
		}
		if err := unix.Chmod(dst, f.st.Mode&0o7777); err != nil {
			return err
		}
	}
	// Times last: making a child changes its parent's.
	for _, f := range fixes {
		ts := []unix.Timespec{f.st.Atim, f.st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(upper, f.path), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func opaque(p string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(p, opaqueAttr(), buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// hidesBelow says whether layer dir hides p of the layers below it: an ancestor of p there is
// opaque, or is not a directory (a whiteout).
func hidesBelow(dir, p string) bool {
	for q := filepath.Dir(p); q != "." && q != "/" && p != ""; q = filepath.Dir(q) {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, q), &st); err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || opaque(filepath.Join(dir, q)) {
				return true
			}
		}
		if q == "" {
			break
		}
	}
	return false
}

func makeCwd(rootfs, cwd string) error {
	if cwd == "" || cwd == "/" {
		return nil
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	h, err := pathrs.MkdirAllHandle(root, cwd, 0o755)
	if err != nil {
		return err
	}
	return h.Close()
}
