// Package rawfile reads and writes small kernel files (cgroup, procfs, sysfs), and the small
// files of an image layout and of the image store that every run --image reads or writes,
// with plain system calls. os.ReadFile and os.WriteFile hand every descriptor to the Go runtime's poller
// first: for a pollable kernel file that is an epoll_ctl to add it and one to remove it, plus
// fcntl calls to make it non-blocking, four to six system calls more per file, and a create
// opens some forty such files. The errors are os's (*os.PathError, "open"/"read"/"write"),
// so callers' texts and errors.Is checks stay as they were.
package rawfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// ReadFile is os.ReadFile for a kernel file.
func ReadFile(path string) ([]byte, error) {
	fd, err := open(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// WriteFile is os.WriteFile for a kernel file: the whole of data in one write where the
// kernel takes it so (a cgroup file reads each write as one value).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	fd, err := open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, uint32(perm.Perm()))
	if err != nil {
		return err
	}
	written := 0
	for {
		n, err := unix.Write(fd, data[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "write", Path: path, Err: err}
		}
		written += n
		if written >= len(data) {
			break
		}
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

func open(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// Open is os.OpenFile for a descriptor berth hands on (to a child, or to the C stage) rather
// than reads through Go: an *os.File the poller never sees, so its Fd needs no fcntl.
func Open(path string, flags int, perm os.FileMode) (*os.File, error) {
	fd, err := open(path, flags, uint32(perm.Perm()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}
