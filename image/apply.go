package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/oci"
)

// How whiteouts are applied.
type applyMode int

const (
	// overlayMode writes a layer into its own empty directory, whiteouts in overlayfs form:
	// a 0/0 character device for .wh.NAME, <ns>.overlay.opaque=y for .wh..wh..opq (ns is
	// trusted for root, user in a user namespace: see userxattr.go).
	overlayMode applyMode = iota
	// mergeMode applies layers one after another into one tree, whiteouts deleting what lower
	// layers wrote (what `umoci unpack` produces).
	mergeMode
)

const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
	bufSize  = 1 << 20
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

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
func applyLayer(r io.Reader, name string, diffID oci.Digest, rootFd int, mode applyMode, a *applier, ahead bool) error {
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
