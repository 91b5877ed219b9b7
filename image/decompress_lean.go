//go:build lean

package image

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/companion"
)

// decompress, in the lean build: an uncompressed stream is returned as it is; a compressed
// one goes through the companion (the full build, run as a filter: companion.Decompress), so
// that no decompressor's package initialisers run in every berth process. The filter's
// errors come back with their texts: a bad header from decompress itself, as in-process, and
// one in the stream from the Read that meets it.
func decompress(r io.Reader, ahead bool) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
	kind, err := sniff(br)
	if err != nil {
		return nil, nil, err
	}
	if kind == uncompressed {
		return br, func() {}, nil
	}
	args := []string{companion.Decompress}
	if ahead {
		args = append(args, "--ahead")
	}
	cmd, err := companion.Command(args...)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdin = br
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	f := &filtered{cmd: cmd, stderr: &stderr, out: bufio.NewReaderSize(out, 256<<10)}
	// The first byte, or the filter's end: a header it refused is decompress's error.
	if _, err := f.out.Peek(1); err != nil {
		if err := f.finish(); err != nil {
			return nil, nil, err
		}
	}
	return f, f.close, nil
}

// filtered reads the companion's output. At its end it waits for the companion (and for the
// copy of the compressed stream into it, so that the caller may read what is left of that
// stream afterwards) and returns its error in place of io.EOF.
type filtered struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	out    *bufio.Reader
	once   sync.Once
	err    error
}

func (f *filtered) Read(p []byte) (int, error) {
	n, err := f.out.Read(p)
	if err == io.EOF {
		if ferr := f.finish(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// finish waits for the companion once; its error is what it wrote on stderr.
func (f *filtered) finish() error {
	f.once.Do(func() {
		if err := f.cmd.Wait(); err != nil {
			msg := strings.TrimSpace(f.stderr.String())
			switch {
			case msg == io.ErrUnexpectedEOF.Error():
				f.err = io.ErrUnexpectedEOF
			case msg != "":
				f.err = errors.New(msg)
			default:
				f.err = err
			}
		}
	})
	return f.err
}

// close ends the filter (the caller has read all it wants): one still running is killed, and
// its error no longer matters.
func (f *filtered) close() {
	_ = f.cmd.Process.Kill() // "already finished" once it has
	_ = f.finish()
}
