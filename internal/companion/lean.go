//go:build lean

package companion

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

//go:embed payload
var payload embed.FS

// sealed is the companion in a memfd sealed against every change, made once a process: it
// runs from there as runc's cloned binary does, so nothing on disk is executed and nothing can
// write to what runs.
var sealed = sync.OnceValues(func() (*os.File, error) {
	src, err := payload.Open("payload/berth-full")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("this berth was built without its companion (scripts/build.sh builds both)")
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-companion", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("companion: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-companion")
	// In pieces: a copy of the whole (11 MB) on the heap would cost a garbage collection.
	if _, err := io.CopyBuffer(onlyWriter{f}, src, make([]byte, 1<<20)); err != nil {
		f.Close()
		return nil, fmt.Errorf("companion: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("companion: sealing: %w", err)
	}
	return f, nil
})

// onlyWriter hides os.File's ReadFrom, so that io.CopyBuffer uses the buffer it is given.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// Exec replaces this process with the companion, with the same arguments and environment: the
// same pid, so a caller waiting for berth waits for it.
func Exec(args []string) error {
	f, err := sealed()
	if err != nil {
		return err
	}
	// The memfd is close-on-exec; execve reads it before closing it.
	err = unix.Exec("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), args, os.Environ())
	return fmt.Errorf("companion: exec: %w", err)
}

// Command is the companion run as a child with args, named berth. The memfd is passed as its
// fd 3 to be executed through /proc/self/fd/3; the hidden commands it runs for the lean build
// start nothing, so that descriptor goes nowhere else.
func Command(args ...string) (*exec.Cmd, error) {
	f, err := sealed()
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: "/proc/self/fd/3", Args: append([]string{"berth"}, args...), ExtraFiles: []*os.File{f}}
	return cmd, nil
}
