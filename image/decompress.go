package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

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
