package image

import (
	"bufio"
	"errors"
	"io"
)

type compression int

const (
	uncompressed compression = iota
	gzipped
	zstded
)

// sniff tells a layer's compression by its first bytes (a media type may be wrong or absent).
func sniff(br *bufio.Reader) (compression, error) {
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return uncompressed, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return gzipped, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		return zstded, nil
	}
	return uncompressed, nil
}
