//go:build !lean

package image

import (
	"bufio"
	"fmt"
	"io"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// decompress sniffs the stream's compression (gzip, zstd or none) and returns the tar stream.
// With ahead, gzip is inflated on a goroutine of its own, ahead of the reader (pgzip); without,
// by the reader (klauspost's inflater, which costs less CPU): for callers that already read on
// a goroutine of their own. The lean build (decompress_lean.go) runs this in its companion.
func decompress(r io.Reader, ahead bool) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
	kind, err := sniff(br)
	if err != nil {
		return nil, nil, err
	}
	if kind != uncompressed {
		parallelWorkers() // GOMAXPROCS for the inflater's and the reader's goroutines
	}
	switch kind {
	case gzipped:
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
	case zstded:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// DecompressTo writes r's tar stream to w: the lean build's companion runs it as a filter
// (companion.Decompress). Its error is the one decompress or a read of its stream gives.
func DecompressTo(w io.Writer, r io.Reader, ahead bool) error {
	zr, closeFn, err := decompress(r, ahead)
	if err != nil {
		return err
	}
	defer closeFn()
	_, err = io.Copy(w, zr)
	return err
}
