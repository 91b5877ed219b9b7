package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

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
	werr := a.copyData(fd, tr, h.Size, isSparse(h))
	if werr == nil {
		werr = a.fdAttrs(fd, h, p.gid)
	}
	if err := unix.Close(fd); werr == nil && err != nil {
		werr = err
	}
	return werr
}

// isSparse says whether the entry is a sparse file (GNU 'S', or PAX GNU.sparse.*): its tar
// data holds only the data blocks, whatever its size says.
func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// zeros is compared with a sparse file's chunks: a chunk of zeros is a hole.
var zeros [bufSize]byte

// copyData writes the entry's bytes with as few write calls as the buffer allows. A sparse
// entry's holes (the tar reader gives them as zeros) stay holes: its size costs no disk, a
// layer of a few hundred bytes can declare a file of terabytes.
func (a *applier) copyData(fd int, r io.Reader, size int64, sparse bool) error {
	end, skipped := size, false
	for size > 0 {
		n := int64(len(a.buf))
		if size < n {
			n = size
		}
		m, err := io.ReadFull(r, a.buf[:n])
		if m > 0 {
			if sparse && bytes.Equal(a.buf[:m], zeros[:m]) {
				if _, err := unix.Seek(fd, int64(m), io.SeekCurrent); err != nil {
					return err
				}
				skipped = true
			} else if err := writeAll(fd, a.buf[:m]); err != nil {
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
	if skipped {
		return unix.Ftruncate(fd, end) // a hole at the end: the size is still the entry's
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
