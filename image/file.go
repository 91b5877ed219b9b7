package image

import (
	"archive/tar"
	"fmt"
	"io"

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
