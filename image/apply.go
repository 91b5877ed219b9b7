package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// How whiteouts are applied.
type applyMode int

const (
	// overlayMode writes a layer into its own empty directory, whiteouts in overlayfs form:
	// a 0/0 character device for .wh.NAME, trusted.overlay.opaque=y for .wh..wh..opq.
	overlayMode applyMode = iota
	// mergeMode applies layers one after another into one tree, whiteouts deleting what lower
	// layers wrote (what `umoci unpack` produces).
	mergeMode
)

const (
	whPrefix   = ".wh."
	whOpaque   = ".wh..wh..opq"
	opaqueAttr = "trusted.overlay.opaque"
	bufSize    = 1 << 20
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// decompress sniffs the stream's compression (gzip, zstd or none) and returns the tar stream.
// With ahead, gzip is inflated on a goroutine of its own, ahead of the reader (pgzip); without,
// by the reader (klauspost's inflater, which costs less CPU): for callers that already read on
// a goroutine of their own.
func decompress(r io.Reader, ahead bool) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		if !ahead {
			zr, err := kgzip.NewReader(br)
			if err != nil {
				return nil, nil, fmt.Errorf("gzip: %w", err)
			}
			return zr, func() { zr.Close() }, nil
		}
		zr, err := pgzip.NewReaderN(br, 1<<20, 2)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// umask is 0 while any layer is applied, so entries are created with their exact modes without
// a chmod each; it is process-wide, hence counted.
var (
	umaskMu    sync.Mutex
	umaskUsers int
	umaskSaved int
)

func umaskZero() (restore func()) {
	umaskMu.Lock()
	if umaskUsers == 0 {
		umaskSaved = unix.Umask(0)
	}
	umaskUsers++
	umaskMu.Unlock()
	return func() {
		umaskMu.Lock()
		umaskUsers--
		if umaskUsers == 0 {
			unix.Umask(umaskSaved)
		}
		umaskMu.Unlock()
	}
}

// LayerStats counts what applying a layer wrote.
type LayerStats struct {
	Entries int64
	Bytes   int64 // uncompressed tar bytes
}

// applyLayer reads one layer blob (verified stream r of blob name) into the directory open as
// rootFd; with ahead, gzip is inflated on a goroutine of its own (worth it when this is the only
// layer being applied). The tar stream must hash to diffID; both checks happen before it returns nil, so the
// caller may trust the directory only then.
func applyLayer(r io.Reader, name string, diffID digest.Digest, rootFd int, mode applyMode, a *applier, ahead bool) error {
	defer umaskZero()()
	tarStream, closeFn, err := decompress(r, ahead)
	if err != nil {
		return blobError(r, fmt.Errorf("layer %s: %w", name, err))
	}
	defer func() {
		if closeFn != nil {
			closeFn()
		}
	}()
	fail := func(err error) error {
		closeFn()
		closeFn = nil
		return blobError(r, err)
	}
	dv, err := newVerifier(tarStream, "layer "+name+" (uncompressed, diffID "+diffID.String()+")", diffID, -1)
	if err != nil {
		return err
	}
	var in io.Reader = dv
	if a == nil {
		a = newApplier(rootFd, mode)
		defer a.close()
	}
	a.layer = name
	if err := a.apply(tar.NewReader(in)); err != nil {
		return fail(err)
	}
	// The tar end may come before the stream's: read the rest so both digests are checked.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return fail(fmt.Errorf("layer %s: %w", name, err))
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("layer %s: %w", name, err)
	}
	return nil
}

// blobError explains a failure to read a layer: when the blob itself is damaged, say that
// (its digest or size) rather than what the decompressor or tar reader made of it.
func blobError(blob io.Reader, err error) error {
	if _, derr := io.Copy(io.Discard, blob); derr != nil {
		var be *blobErr
		if errors.As(derr, &be) {
			return fmt.Errorf("%w (%v)", derr, err)
		}
	}
	return err
}

// countingReader counts bytes for progress reports.
type countingReader struct {
	r  io.Reader
	n  int64
	mu sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// applier writes tar entries below one directory, by descriptor: every parent directory is
// opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so no entry can land outside the
// tree, through a symlink (one the layer made, or any other) or through "..".
type applier struct {
	root  int
	mode  applyMode
	layer string
	buf   []byte
	euid  int
	egid  int
	dirs  map[string]*dirFd // open parents
	times []dirTime         // directory mtimes, set once their contents are written
	// seen holds the paths this layer wrote (mergeMode): its whiteouts spare them.
	seen      map[string]struct{}
	touched   map[string][2]unix.Timespec // mergeMode: directories this layer wrote in, their times before
	finishing bool
	// implicit holds the directories this layer has no entry for (overlayMode): made as
	// parents of its entries, they must not mask a lower layer's attributes (see fixImplicit).
	implicit map[string]bool
	// record keeps the whiteouts and opaque directories made (for mergeLayer).
	record    bool
	whiteouts []string
	opaques   []string
	Stats     LayerStats
	written   bool
}

type dirFd struct {
	fd  int
	gid int // the gid a new entry gets: the directory's if it is setgid
}

type dirTime struct {
	path  string
	mtime unix.Timespec
	atime unix.Timespec
}

func newApplier(root int, mode applyMode) *applier {
	b := bufPool.Get().(*[]byte)
	a := &applier{root: root, mode: mode, buf: *b, euid: os.Geteuid(), egid: os.Getegid(),
		dirs: map[string]*dirFd{}}
	if mode == overlayMode {
		a.implicit = map[string]bool{"": true}
	}
	return a
}

func (a *applier) close() {
	a.dropDirs()
	if a.buf != nil {
		b := a.buf
		bufPool.Put(&b)
		a.buf = nil
	}
}

func (a *applier) dropDirs() {
	for k, d := range a.dirs {
		unix.Close(d.fd)
		delete(a.dirs, k)
	}
}

// errRefused marks entries refused for safety.
var errRefused = errors.New("refused")

// cleanName turns a tar name into a relative path with no "." or empty components; ".."
// anywhere is refused rather than clamped.
func cleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%q contains \"..\": %w (it would escape the layer directory)", name, errRefused)
		}
	}
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/"), nil
}

// parent returns an fd for directory dir ("" is the root), creating missing directories
// (0755, root-owned, as tar does) and refusing any symlink on the way.
func (a *applier) parent(dir string) (*dirFd, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		if d, ok := a.dirs[""]; ok {
			return d, nil
		}
		return a.cacheDir("", a.root, true)
	}
	if d, ok := a.dirs[dir]; ok {
		return d, nil
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := unix.Openat2(a.root, dir, &how)
	if err == unix.ENOENT {
		// Create what is missing, one component at a time.
		pdir, base := path.Split(dir)
		p, perr := a.parent(pdir)
		if perr != nil {
			return nil, perr
		}
		if err := unix.Mkdirat(p.fd, base, 0o755); err != nil && err != unix.EEXIST {
			return nil, fmt.Errorf("mkdir %s: %w", dir, err)
		}
		a.markSeen(dir) // this layer's, even if made implicitly: an opaque marker spares it
		if a.implicit != nil {
			a.implicit[dir] = true
		}
		if p.gid != a.egid {
			_ = unix.Fchownat(p.fd, base, a.euid, a.egid, unix.AT_SYMLINK_NOFOLLOW)
		}
		fd, err = unix.Openat2(a.root, dir, &how)
	}
	switch err {
	case nil:
	case unix.ELOOP:
		return nil, fmt.Errorf("%s goes through a symlink: %w (a link followed by a later entry could escape the layer)", dir, errRefused)
	case unix.EXDEV:
		return nil, fmt.Errorf("%s escapes the layer directory: %w", dir, errRefused)
	case unix.ENOTDIR:
		return nil, fmt.Errorf("%s: a parent is not a directory", dir)
	default:
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	if len(a.dirs) >= 256 {
		a.dropDirs()
	}
	return a.cacheDir(dir, fd, false)
}

func (a *applier) cacheDir(dir string, fd int, borrowed bool) (*dirFd, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		if !borrowed {
			unix.Close(fd)
		}
		return nil, err
	}
	if borrowed {
		// The root fd belongs to the caller: cache a duplicate so dropDirs may close it.
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		fd = nfd
	}
	if a.mode == mergeMode && !a.finishing {
		// Writing into a directory a lower layer made changes its mtime: note the one it
		// had, for finish to put back (as umoci does) unless this layer sets its own.
		if a.touched == nil {
			a.touched = map[string][2]unix.Timespec{}
		}
		if _, ok := a.touched[dir]; !ok {
			a.touched[dir] = [2]unix.Timespec{st.Atim, st.Mtim}
		}
	}
	d := &dirFd{fd: fd, gid: a.egid}
	if st.Mode&unix.S_ISGID != 0 {
		d.gid = int(st.Gid)
	}
	a.dirs[dir] = d
	return d, nil
}

func (a *applier) apply(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s: reading tar: %w", a.layer, err)
		}
		a.Stats.Entries++
		if err := a.entry(tr, h); err != nil {
			return fmt.Errorf("layer %s: tar entry %q: %w", a.layer, h.Name, err)
		}
	}
	return a.finish()
}

// finish sets directory times last: writing into a directory changes its mtime.
func (a *applier) finish() error {
	if len(a.touched) > 0 {
		explicit := make(map[string]bool, len(a.times))
		for _, t := range a.times {
			explicit[t.path] = true
		}
		for dir, ts := range a.touched {
			if explicit[dir] {
				continue
			}
			a.times = append([]dirTime{{dir, ts[1], ts[0]}}, a.times...)
		}
		a.touched = nil
	}
	a.finishing = true
	defer func() { a.finishing = false }()
	for i := len(a.times) - 1; i >= 0; i-- {
		t := a.times[i]
		var err error
		if t.path == "" {
			err = futimens(a.root, t.atime, t.mtime)
		} else {
			dir, base := path.Split(t.path)
			var p *dirFd
			if p, err = a.parent(dir); err == nil {
				err = unix.UtimesNanoAt(p.fd, base, []unix.Timespec{t.atime, t.mtime}, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("layer %s: times of %s: %w", a.layer, t.path, err)
		}
	}
	a.times = a.times[:0]
	a.seen = nil
	if a.mode == mergeMode {
		a.dropDirs() // the next layer notes the times of what it touches afresh
	}
	return nil
}

func futimens(fd int, atime, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{atime, mtime}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (a *applier) markSeen(p string) {
	if a.mode == mergeMode {
		if a.seen == nil {
			a.seen = map[string]struct{}{}
		}
		a.seen[p] = struct{}{}
	}
}

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

func (a *applier) file(tr *tar.Reader, h *tar.Header, p *dirFd, base, rel string, perm uint32) error {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(p.fd, base, flags, perm)
	if err == unix.EEXIST {
		if err = a.remove(p.fd, base, rel); err == nil {
			fd, err = unix.Openat(p.fd, base, flags, perm)
		}
	}
	if err != nil {
		return err
	}
	werr := a.copyData(fd, tr, h.Size)
	if werr == nil {
		werr = a.fdAttrs(fd, h, p.gid)
	}
	if err := unix.Close(fd); werr == nil && err != nil {
		werr = err
	}
	return werr
}

// copyData writes the entry's bytes with as few write calls as the buffer allows.
func (a *applier) copyData(fd int, r io.Reader, size int64) error {
	for size > 0 {
		n := int64(len(a.buf))
		if size < n {
			n = size
		}
		m, err := io.ReadFull(r, a.buf[:n])
		if m > 0 {
			if err := writeAll(fd, a.buf[:m]); err != nil {
				return err
			}
			a.Stats.Bytes += int64(m)
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("truncated file data: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
		size -= int64(m)
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// fdAttrs sets owner, special mode bits, xattrs and times of an open regular file.
func (a *applier) fdAttrs(fd int, h *tar.Header, defGid int) error {
	if h.Uid != a.euid || h.Gid != defGid {
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return err
		}
		// chown clears set-id bits: set them again.
		if h.Mode&0o6000 != 0 {
			if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
				return err
			}
		}
	}
	for k, v := range xattrs(h) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return futimens(fd, atime(h), unix.NsecToTimespec(h.ModTime.UnixNano()))
}

// attrsAt sets the attributes of a directory, symlink, device or fifo by name; directory
// times are left for finish.
func (a *applier) attrsAt(p *dirFd, base string, h *tar.Header, isDir, force bool) error {
	if force || h.Uid != a.euid || h.Gid != p.gid {
		if err := unix.Fchownat(p.fd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if h.Typeflag != tar.TypeSymlink && (force || h.Mode&0o6000 != 0 || isDir && p.gid != a.egid) {
		if err := unix.Fchmodat(p.fd, base, uint32(h.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if x := xattrs(h); len(x) > 0 {
		procPath := "/proc/self/fd/" + strconv.Itoa(p.fd) + "/" + base
		for k, v := range x {
			if err := unix.Lsetxattr(procPath, k, []byte(v), 0); err != nil {
				return fmt.Errorf("xattr %s: %w", k, err)
			}
		}
	}
	if isDir {
		return nil
	}
	return unix.UtimesNanoAt(p.fd, base, []unix.Timespec{atime(h), unix.NsecToTimespec(h.ModTime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
}

// rootAttrs sets the root directory's attributes (all: it was not created from the tar).
func (a *applier) rootAttrs(h *tar.Header) error {
	fd := a.root
	{
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, uint32(h.Mode)&0o7777); err != nil {
		return err
	}
	for k, v := range xattrs(h) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return nil
}

// xattrs are the entry's extended attributes, less any that would steer overlayfs.
func xattrs(h *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
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
			return fmt.Errorf("hard link to %s, which is not in this layer: %w (not supported in the layer store)", h.Linkname, errCrossLayerLink)
		}
		return fmt.Errorf("hard link to %s, which does not exist", h.Linkname)
	}
	return err
}

// whiteout applies .wh.NAME and .wh..wh..opq in dir.
func (a *applier) whiteout(dir, base string) error {
	p, err := a.parent(dir)
	if err != nil {
		return err
	}
	if base == whOpaque {
		if a.mode == overlayMode {
			if a.record {
				a.opaques = append(a.opaques, strings.TrimSuffix(dir, "/"))
			}
			if err := unix.Fsetxattr(p.fd, opaqueAttr, []byte("y"), 0); err != nil {
				return fmt.Errorf("marking %s opaque: %w (the layer store under --root must be on a filesystem that holds whiteouts and trusted xattrs: ext4, xfs, btrfs, tmpfs; not overlayfs or NFS)", dir, err)
			}
			return nil
		}
		// Everything lower layers put in dir goes; what this layer wrote stays.
		fd, err := unix.Openat(p.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), dir)
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		prefix := strings.TrimSuffix(dir, "/")
		for _, n := range names {
			if _, ok := a.seen[path.Join(prefix, n)]; ok {
				continue
			}
			if err := a.remove(p.fd, n, path.Join(prefix, n)); err != nil {
				return err
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whPrefix)
	if name == "" || name == "." || strings.Contains(name, "/") {
		return fmt.Errorf("bad whiteout name %q", base)
	}
	rel := path.Join(dir, name)
	if a.mode == overlayMode {
		// A name this layer also writes stays (it hides lower layers by itself).
		var st unix.Stat_t
		if unix.Fstatat(p.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return nil
		}
		if a.record {
			a.whiteouts = append(a.whiteouts, rel)
		}
		if err := unix.Mknodat(p.fd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("making the overlayfs whiteout %s: %w (the layer store under --root must be on a filesystem that holds whiteouts and trusted xattrs: ext4, xfs, btrfs, tmpfs; not overlayfs or NFS)", rel, err)
		}
		return nil
	}
	if _, ok := a.seen[rel]; ok {
		return nil
	}
	// Deleting changes the directory's mtime: keep the one its layer gave it.
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return err
	}
	if err := a.remove(p.fd, name, rel); err != nil {
		return err
	}
	return futimens(p.fd, st.Atim, st.Mtim)
}
